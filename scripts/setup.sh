#!/usr/bin/env bash
# Set up everything LLM Lab needs, idempotently, from a fresh clone:
#   .venv/ with torch (CPU build unless an NVIDIA GPU is present), then every other
#   package from requirements/lock.txt (pinned, with hashes), then labkit itself;
#   Debian's chromium for the browser check of the built book (when root/sudo);
#   the book's JavaScript (plotly.js, MathJax, the widget manager) in book/vendor/.
# Safe to run again: each step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
VENV=.venv
PIP="$VENV/bin/python -m pip"
say() { printf '[setup] %s\n' "$*"; }

# 1. Python environment --------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  # torch first and alone: the lock below holds every other package, and the
  # CPU build's own dependencies, so pip never pulls a multi-GB CUDA build
  # onto a machine without a GPU.
  if command -v nvidia-smi >/dev/null 2>&1; then
    say "installing torch==$TORCH_VERSION (GPU found: with its CUDA libraries)"
    $PIP install -q "torch==$TORCH_VERSION"
  elif $PIP download -q --no-deps --no-index -d "$(mktemp -d)" "torch==$TORCH_VERSION" \
      >/dev/null 2>&1; then
    say "installing torch==$TORCH_VERSION from the local CPU wheel"
    $PIP install -q --no-deps "torch==$TORCH_VERSION"
  else
    say "installing torch==$TORCH_VERSION, CPU build"
    $PIP install -q --no-deps "torch==$TORCH_VERSION" \
      --index-url https://download.pytorch.org/whl/cpu
  fi
fi
stamp="$VENV/.labkit-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] \
    || [ requirements/lock.txt -nt "$stamp" ]; then
  # every package pinned with its hashes (refresh: python scripts/lock.py)
  say "installing the locked packages (requirements/lock.txt) and labkit"
  $PIP install -q --require-hashes --no-deps -r requirements/lock.txt
  $PIP install -q --no-deps --no-build-isolation -e .
  touch "$stamp"
fi

# 2. A real browser for the check of the built site ----------------------------
if ! command -v chromium >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
  if command -v apt-get >/dev/null 2>&1 && { [ -z "$SUDO" ] || sudo -n true 2>/dev/null; }; then
    say "installing Debian's chromium"
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium >/dev/null \
      || say "chromium could not be installed: the browser check will skip"
  else
    say "no apt-get/root: chromium not installed; the browser check will skip"
  fi
fi

# 3. The book's JavaScript, served from the book itself (never from a CDN) -----
VENDOR=book/vendor
CACHE=.cache/npm
if [ ! -f "$VENDOR/.complete-2" ]; then
  say "fetching plotly.js, MathJax, require.js and the widget manager into $VENDOR"
  rm -rf "$VENDOR" && mkdir -p "$VENDOR" "$CACHE"
  "$VENV/bin/python" - "$VENDOR" <<'PY'
import pathlib, shutil, sys
import plotly
src = pathlib.Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
shutil.copy(src, pathlib.Path(sys.argv[1]) / "plotly.min.js")
PY
  if ! command -v npm >/dev/null 2>&1; then
    say "npm missing: installing Debian's npm"
    apt-get install -y -qq npm >/dev/null
  fi
  ( cd "$CACHE" && npm pack --silent @jupyter-widgets/html-manager@1.0.15 \
      requirejs@2.3.7 mathjax@3.2.2 >/dev/null )
  tmp=$(mktemp -d)
  tar xzf "$CACHE/jupyter-widgets-html-manager-1.0.15.tgz" -C "$tmp"
  find "$tmp/package/dist" -maxdepth 1 -type f ! -name '*.map' -exec cp {} "$VENDOR/" \;
  # the widget bundles load their icon fonts relative to their require.js module
  # ids, '@jupyter-widgets/...', under require's baseUrl (set to _static/)
  for fonts in "$VENDOR/@jupyter-widgets" "$VENDOR/@jupyter-widgets/html-manager/dist"; do
    mkdir -p "$fonts"
    find "$tmp/package/dist" -maxdepth 1 -type f -regex '.*\.\(eot\|svg\|ttf\|woff2?\)' \
      -exec cp {} "$fonts/" \;
  done
  rm -rf "$tmp/package" && tar xzf "$CACHE/requirejs-2.3.7.tgz" -C "$tmp"
  "$VENV/bin/python" -c "import sys,shutil; shutil.copy(sys.argv[1], sys.argv[2])" \
    "$tmp/package/require.js" "$VENDOR/require.js"
  rm -rf "$tmp/package" && tar xzf "$CACHE/mathjax-3.2.2.tgz" -C "$tmp"
  cp -r "$tmp/package/es5" "$VENDOR/mathjax"
  rm -rf "$tmp"
  touch "$VENDOR/.complete-2"
fi
say "ready: $("$VENV/bin/python" -c 'import torch,sys; print("python", sys.version.split()[0], "torch", torch.__version__)')"
