"""Refresh requirements/lock.txt: every package but torch, pinned with hashes.

The lock covers Linux x86-64 and Python 3.10-3.12 in one file (environment
markers choose the version per Python). torch is left out on purpose: setup.sh
installs the CPU build of ``TORCH_VERSION`` first (a GPU build where a GPU is
present), and the lock carries the CPU build's own dependencies instead, which
are read here from the installed torch. Versions already in the lock are kept
when they still fit, so a refresh moves only what must move.

Usage (needs the package registry, once):
    .venv/bin/pip install uv && .venv/bin/python scripts/lock.py
"""

import re
import shutil
import subprocess
import sys
import tempfile
from importlib.metadata import requires
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "lock.txt"


def direct_requirements() -> list[str]:
    """labkit's dependencies and dev extras (but torch), and torch's own."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["dev"]
    wanted = [r for r in wanted if not re.match(r"torch\b", r)]
    for req in requires("torch") or []:
        if "extra ==" not in req:  # optional extras of torch: not needed
            wanted.append(req)
    return wanted


def main() -> int:
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    if not Path(uv).exists():
        print("uv not found: .venv/bin/pip install uv", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "requirements.in"
        spec.write_text("\n".join(direct_requirements()) + "\n")
        LOCK.parent.mkdir(exist_ok=True)
        cmd = [
            uv, "pip", "compile", str(spec), "--universal",
            "--python-version", "3.10", "--generate-hashes",
            "--index-url", "https://pypi.org/simple",
            "--custom-compile-command", "python scripts/lock.py",
            "-o", str(LOCK),
        ]  # fmt: skip
        return subprocess.run(cmd, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
