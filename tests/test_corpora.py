"""The corpus registry: cache, stdlib corpus, checked downloads, bad input."""

import functools
import hashlib
import http.server
import re
import shutil
import threading
from pathlib import Path

import pytest

from labkit import corpora

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "corpora"


@pytest.fixture
def server(tmp_path, shared_dir):
    """A local HTTP server on 127.0.0.1 serving a copy of Tiny Shakespeare."""
    root = tmp_path / "www"
    root.mkdir()
    shutil.copy(shared_dir / "corpora" / "tinyshakespeare.txt", root / "ts.txt")
    (root / "wrong.txt").write_text("not Shakespeare\n")
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(root)
    )
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


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


def test_interrupted_download_leaves_no_partial_file(cache, tmp_path):
    # a server that promises more bytes than it sends, then hangs up
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)

    def serve():
        conn, _ = sock.accept()
        conn.recv(4096)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 10)
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/ts.txt"
    with pytest.raises(corpora.CorpusUnavailable):
        corpora.corpus_path("tinyshakespeare", url=url, progress=False)
    sock.close()
    assert list(cache.iterdir()) == []


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
