"""The corpus registry: cache, stdlib corpus, checked downloads, bad input."""

import dataclasses
import hashlib
import re
from pathlib import Path

import pytest

from labkit import corpora

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "corpora"


@pytest.fixture
def server(http_server, shared_dir):
    """The local server with a copy of Tiny Shakespeare and a wrong file."""
    text = (shared_dir / "corpora" / "tinyshakespeare.txt").read_bytes()
    http_server.serve("/ts.txt", text)
    http_server.serve("/wrong.txt", b"not Shakespeare\n")
    return http_server.url


def test_download_checks_sha256_and_caches(cache, server):
    path = corpora.corpus_path(
        "tinyshakespeare", url=f"{server}/ts.txt", progress=False
    )
    assert path == cache / "tinyshakespeare.txt"
    assert corpora.sha256_file(path) == corpora.get("tinyshakespeare").sha256
    text = corpora.load_text("tinyshakespeare", url="http://127.0.0.1:9/gone")
    assert text.startswith("First Citizen:")  # cached: no second download


def test_checksum_mismatch_leaves_no_file(cache, server):
    with pytest.raises(corpora.CorpusUnavailable, match="checksum mismatch"):
        corpora.corpus_path(
            "tinyshakespeare", url=f"{server}/wrong.txt", progress=False
        )
    assert not cache.exists() or list(cache.iterdir()) == []


def test_offline_message_says_where_to_put_the_file(cache, server):
    with pytest.raises(corpora.CorpusUnavailable) as err:
        corpora.corpus_path(
            "tinyshakespeare", url=f"{server}/missing.txt", progress=False
        )
    msg = str(err.value)
    assert str(cache / "tinyshakespeare.txt") in msg and "yourself" in msg
    assert list(cache.iterdir()) == []  # no partial file


BODY = bytes(range(256)) * 20  # 5,120 bytes


def test_complete_download_without_a_pin_is_kept(http_server, tmp_path):
    url = http_server.serve("/a.bin", BODY)
    path = corpora.download(url, tmp_path / "a.bin", None, progress=False)
    assert path.read_bytes() == BODY
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_body_shorter_than_its_content_length_fails_and_leaves_nothing(
    http_server, tmp_path
):
    # a server that announces 244,000 bytes and sends 5,120: no sha256 to
    # catch it, so the byte count must
    url = http_server.serve("/short.txt", BODY, announce=244_000)
    with pytest.raises(corpora.CorpusUnavailable) as err:
        corpora.fetch(url, tmp_path / "short.txt", None, progress=False)
    assert isinstance(err.value, corpora.DownloadFailed)
    assert f"incomplete download of {url}: 5120 of the 244000" in str(err.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("chunked", [False, True])
def test_connection_cut_mid_stream_is_download_failed_naming_the_url(
    http_server, tmp_path, chunked
):
    url = http_server.serve("/cut.txt", BODY, cut_after=1000, chunked=chunked)
    with pytest.raises(corpora.CorpusUnavailable) as err:
        corpora.download(url, tmp_path / "cut.txt", progress=False)
    assert isinstance(err.value, ConnectionError) and url in str(err.value)
    assert "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_download_keeps_the_file_that_was_there(http_server, tmp_path):
    dest = tmp_path / "kept.txt"
    dest.write_bytes(b"old")
    url = http_server.serve("/cut.txt", BODY, cut_after=10)
    with pytest.raises(corpora.DownloadFailed):
        corpora.download(url, dest, progress=False)
    assert dest.read_bytes() == b"old" and list(tmp_path.iterdir()) == [dest]


def test_http_error_is_download_failed(http_server, tmp_path):
    with pytest.raises(corpora.CorpusUnavailable, match="HTTP Error 404"):
        corpora.download(http_server.url + "/nothing", tmp_path / "x", progress=False)


def run_cli(*argv) -> tuple[int, list[str]]:
    """labkit's command line in-process: (exit status, stderr lines)."""
    import contextlib
    import io

    from labkit import cli

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        status = cli.main(list(argv))
    return status, err.getvalue().splitlines()


def test_offline_and_wrong_cached_file_are_one_line_cli_errors(
    cache, http_server, tmp_path, monkeypatch
):
    entry = corpora.get("tinyshakespeare")
    dead = dataclasses.replace(entry, url=http_server.closed_url)
    monkeypatch.setitem(corpora.CORPORA, "tinyshakespeare", dead)
    argv = ("tokenize", "--corpus", "tinyshakespeare", "--out", str(tmp_path / "t"))
    status, lines = run_cli(*argv)
    assert status == 2 and len(lines) == 1, lines
    assert http_server.closed_url in lines[0] and "Offline?" in lines[0]
    assert str(cache / "tinyshakespeare.txt") in lines[0]
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "tinyshakespeare.txt").write_bytes(b"not Shakespeare")
    status, lines = run_cli(*argv)
    assert status == 2 and len(lines) == 1, lines
    got = hashlib.sha256(b"not Shakespeare").hexdigest()
    assert f"tinyshakespeare.txt has sha256 {got}, expected" in lines[0]


def test_gpt2_files_download_through_the_same_checks(http_server, tmp_path):
    from labkit.tokenizer.gpt2 import download_gpt2_files

    http_server.serve("/encoder.json", BODY, cut_after=100, chunked=True)
    files = {"encoder.json": hashlib.sha256(BODY).hexdigest()}
    with pytest.raises(ConnectionError, match="/encoder.json"):
        download_gpt2_files(tmp_path / "gpt2", http_server.url, files)
    assert list((tmp_path / "gpt2").iterdir()) == []


def test_one_cache_root_for_corpora_and_models(monkeypatch, tmp_path):
    from labkit import recipes

    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path))
    assert corpora.cache_root() == tmp_path
    assert corpora.cache_dir() == tmp_path / "corpora"
    assert recipes.models_dir() == tmp_path / "models"
    monkeypatch.delenv("LABKIT_CACHE")
    assert corpora.cache_root() == Path.home() / ".cache" / "labkit"


def test_atomic_path_leaves_nothing_when_the_block_raises(tmp_path):
    with pytest.raises(RuntimeError):
        with corpora.atomic_path(tmp_path / "out.txt") as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    corpora.write_atomic(tmp_path / "out.txt", b"whole")
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_a_wrong_file_put_by_hand_is_refused(cache):
    cache.mkdir(parents=True)
    (cache / "tinyshakespeare.txt").write_text("hello\n")
    with pytest.raises(corpora.CorpusUnavailable, match="expected"):
        corpora.load_text("tinyshakespeare")


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="known: stories, python-stdlib"):
        corpora.load_text("shakespear")


def test_stories_generated_once_and_checked(cache):
    text = corpora.load_text("stories")
    path = corpora.corpus_path("stories")
    assert hashlib.sha256(text.encode()).hexdigest() == corpora.STORIES_SHA256
    path.write_text("corrupted")  # a damaged cache file is regenerated
    assert corpora.load_text("stories") == text
    assert 0 < corpora.entropy_rate("stories") < 1


def test_entropy_rate_unknown_for_real_text():
    with pytest.raises(ValueError, match="unknown"):
        corpora.entropy_rate("python-stdlib")


def test_stdlib_corpus_is_sorted_and_skips_tests(cache):
    files = corpora.stdlib_files()
    assert files and all(p.suffix == ".py" for p in files)
    assert not any("site-packages" in p.parts or "test" in p.parts for p in files)
    text = corpora.load_text("python-stdlib")
    headers = re.findall(r"^# file: (\S+)$", text, flags=re.M)
    assert headers == sorted(headers) and "os.py" in headers


def test_read_text_names_empty_and_non_utf8_files(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.txt is empty"):
        corpora.read_text(empty)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"caf\xc3\xa9 ok \xff here")
    with pytest.raises(ValueError, match=r"bad.txt is not UTF-8: byte offset 9"):
        corpora.read_text(bad)


def test_every_corpus_has_a_card_with_its_sha256():
    for c in corpora.CORPORA.values():
        card = (REPO / "corpora" / f"{c.name}.md").read_text()
        assert f"# {c.name}" in card
        if c.sha256:
            assert c.sha256 in card


def test_docs_corpus_is_pydoc_topics_in_sorted_order(cache):
    from pydoc_data.topics import topics

    text = corpora.load_text("python-docs")
    assert corpora.corpus_path("python-docs").parent == cache
    names = re.findall(r"^# topic: (\S+)$", text, flags=re.M)
    assert names == sorted(topics) and "assert" in names
    for name in ("assert", "calls", "with"):
        header = f"# topic: {name}\n"
        start = text.index(header) + len(header)
        assert text[start : start + len(topics[name])] == topics[name]
    assert corpora.docs_text() == text


def test_docs_corpus_has_thousands_of_distinct_pretokens():
    from labkit.tokenizer import pretokenize

    text = corpora.docs_text()
    assert text.count(" the ") > 1000  # English prose
    assert len(set(pretokenize(text))) > 5000  # room for thousands of merges


def test_docs_corpus_without_pydoc_data_says_so(cache, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pydoc_data.topics", None)  # import fails
    with pytest.raises(corpora.CorpusUnavailable, match="no pydoc_data.topics"):
        corpora.load_text("python-docs")
    assert not cache.exists() or list(cache.iterdir()) == []


def test_stdlib_corpora_are_cached_per_full_python_version(cache, monkeypatch):
    """3.11.2 and 3.11.7 ship different pydoc topics: they must not share a
    cached text (a cache keyed by 3.11 gave one the other's)."""
    seen = corpora.corpus_path("python-docs")
    assert seen.name == (
        f"python-docs-{corpora.platform.python_implementation()}-"
        f"{corpora.platform.python_version()}.txt"
    )
    monkeypatch.setattr(corpora.platform, "python_version", lambda: "3.11.2")
    monkeypatch.setattr(corpora, "docs_text", lambda: "# topic: other\ntext")
    other = corpora.corpus_path("python-docs")
    assert other != seen and other.name.endswith("-3.11.2.txt")
    assert corpora.read_text(other) == "# topic: other\ntext"
    assert corpora.read_text(seen) != corpora.read_text(other)
