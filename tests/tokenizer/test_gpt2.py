"""GPT-2's files: our encode equals HF tokenizers and tiktoken built from them."""

import functools
import hashlib
import http.server
import threading

import pytest

from labkit.tokenizer import Tokenizer, find_gpt2_files, load_gpt2_files
from labkit.tokenizer.gpt2 import bytes_to_unicode, download_gpt2_files

TEXTS = {
    "multilingual": "Größe café naïve. Привет мир! 你好，世界。 こんにちは 안녕하세요 "
    "مرحبا بالعالم שלום עולם ελληνικά हिन्दी",
    "emoji": "I ❤️ 🍕! 👩‍👩‍👧‍👦 family 🏳️‍🌈 flags 🇫🇷🇯🇵 and 🙂🙂🙂 skin 👍🏽",
    "whitespace": "  two  spaces\n\n\nthree newlines\t\ttabs \r\n crlf   \n \n"
    "\u00a0nbsp\u3000ideographic    trailing   ",
    "code": 'def f(x: int) -> int:\n    """Doc."""\n    return x ** 2  # sq\n\n'
    "for (int i = 0; i < n; ++i) { a[i] += b[i]; }\n"
    "if __name__ == '__main__':\n\tprint(f'{x!r:>10}')\n"
    "It's they'll we've I'm you'd DON'T 12345678 3.14159",
    # one long pre-token each: the encoder's heap path, not the plain loop
    "no spaces": "".join(chr(97 + (i * i + 7 * i) % 26) for i in range(3000)),
    "one letter": "a" * 2001 + " " + "ab" * 700,
    "digits": "".join(str(i % 97) for i in range(1500)),
}


@pytest.fixture(scope="module")
def gpt2_paths():
    from conftest import SHARED

    fixtures = SHARED / "fixtures"
    if not (fixtures / "gpt2_vocab.json").exists():
        pytest.skip(f"GPT-2 files not found in {fixtures}")
    return fixtures / "gpt2_vocab.json", fixtures / "gpt2_merges.txt"


@pytest.fixture(scope="module")
def ours(gpt2_paths):
    return load_gpt2_files(*gpt2_paths)


@pytest.fixture(scope="module")
def hf(gpt2_paths):
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import decoders, models, pre_tokenizers

    vocab, merges = gpt2_paths
    hf = tokenizers.Tokenizer(models.BPE.from_file(str(vocab), str(merges)))
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = decoders.ByteLevel()
    hf.add_special_tokens(["<|endoftext|>"])
    return lambda text: hf.encode(text, add_special_tokens=False).ids


@pytest.fixture(scope="module")
def tiktoken_enc(ours):
    tiktoken = pytest.importorskip("tiktoken")
    from labkit.tokenizer.pretokenize import GPT2_PATTERN

    ranks = {t: i for i, t in ours.vocab.items() if i != 50256}
    enc = tiktoken.Encoding(
        "gpt2-offline",
        pat_str=GPT2_PATTERN,
        mergeable_ranks=ranks,
        special_tokens={"<|endoftext|>": 50256},
    )
    return lambda text: enc.encode(text, allowed_special="all")


def test_gpt2_loader_undoes_the_byte_table(ours):
    assert ours.vocab_size == 50257 and len(ours.merges) == 50000
    assert ours.special_tokens == {"<|endoftext|>": 50256}
    assert ours.vocab[220] == b" " and ours.vocab[198] == b"\n"
    assert ours.encode("Hello world") == [15496, 995]
    table = bytes_to_unicode()
    assert len(set(table.values())) == 256 and table[ord(" ")] == "\u0120"


@pytest.mark.needs_hf
@pytest.mark.parametrize("name", sorted(TEXTS))
@pytest.mark.parametrize("eot", [False, True])
def test_encode_matches_hf_and_tiktoken(ours, hf, tiktoken_enc, name, eot):
    text = TEXTS[name]
    if eot:
        text = "<|endoftext|>" + text.replace(" ", "<|endoftext|> ", 3)
    ids = ours.encode(text)
    assert ids == hf(text)
    assert ids == tiktoken_enc(text)
    assert (50256 in ids) == eot
    assert ours.decode(ids) == text


@pytest.mark.needs_hf
@pytest.mark.slow
def test_encode_matches_hf_and_tiktoken_on_shakespeare(
    ours, hf, tiktoken_enc, shared_dir
):
    text = (shared_dir / "corpora" / "tinyshakespeare.txt").read_text()
    ids = ours.encode(text)
    assert ids == tiktoken_enc(text)
    assert ids == hf(text)
    mixed = text[:20_000] + "<|endoftext|>" + text[20_000:40_000]
    assert ours.encode(mixed) == hf(mixed) == tiktoken_enc(mixed)


def test_find_gpt2_files_looks_only_in_the_cache(tmp_path, monkeypatch):
    """Package code never reaches for ../shared; tests pass those paths in."""
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path))
    assert find_gpt2_files() is None
    (tmp_path / "gpt2").mkdir()
    (tmp_path / "gpt2" / "encoder.json").write_text("{}")
    assert find_gpt2_files() is None  # vocab.bpe is missing
    (tmp_path / "gpt2" / "vocab.bpe").write_text("")
    assert find_gpt2_files() == (
        tmp_path / "gpt2" / "encoder.json",
        tmp_path / "gpt2" / "vocab.bpe",
    )


def test_from_gpt2_files_is_deprecated(gpt2_paths, ours):
    with pytest.deprecated_call(match="use labkit.tokenizer.load_gpt2_files"):
        tok = Tokenizer.from_gpt2_files(*gpt2_paths)
    assert tok == ours


def test_merges_header_line_is_skipped(gpt2_paths, ours, tmp_path):
    vocab, merges = gpt2_paths
    with_header = tmp_path / "vocab.bpe"
    with_header.write_text("#version: 0.2\n" + merges.read_text(encoding="utf-8"))
    assert load_gpt2_files(vocab, with_header) == ours


def test_bad_merges_line_is_named(gpt2_paths, tmp_path):
    bad = tmp_path / "vocab.bpe"
    bad.write_text("\u0120 t\nthree parts here\n", encoding="utf-8")
    with pytest.raises(ValueError, match="vocab.bpe:2: expected 'a b'"):
        load_gpt2_files(gpt2_paths[0], bad)


@pytest.fixture
def local_server(tmp_path):
    """An http.server on 127.0.0.1 serving a tmp folder (never the internet)."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(served)
    )
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_download_checks_sha256(local_server, tmp_path):
    served, url = local_server
    (served / "a.txt").write_bytes(b"hello")
    good = {"a.txt": hashlib.sha256(b"hello").hexdigest()}
    paths = download_gpt2_files(tmp_path / "dest", url, good)
    assert paths["a.txt"].read_bytes() == b"hello"
    (served / "a.txt").write_bytes(b"tampered")  # cached file is kept
    assert download_gpt2_files(tmp_path / "dest", url, good) == paths
    with pytest.raises(ValueError, match="sha256 is .*, expected 0000"):
        download_gpt2_files(tmp_path / "dest2", url, {"a.txt": "0" * 64})
    assert list((tmp_path / "dest2").iterdir()) == []  # no partial file left
    with pytest.raises(ConnectionError, match="copy the file to .*missing.txt"):
        download_gpt2_files(tmp_path / "dest3", url, {"missing.txt": "0" * 64})


def test_download_real_gpt2_files_from_local_server(local_server, gpt2_paths, tmp_path):
    """The pinned encoder.json sha256 is that of the fixture file."""
    served, url = local_server
    (served / "encoder.json").write_bytes(gpt2_paths[0].read_bytes())
    from labkit.tokenizer.gpt2 import GPT2_FILES

    files = {"encoder.json": GPT2_FILES["encoder.json"]}
    paths = download_gpt2_files(tmp_path / "dest", url, files)
    assert paths["encoder.json"].read_bytes() == gpt2_paths[0].read_bytes()
