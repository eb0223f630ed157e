"""Shared fixtures: seeds, the ../shared reference files, small configs."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture
def shared_dir() -> Path:
    """The reference files beside the repo (Tiny Shakespeare, GPT-2 vocab/merges).

    Tests that need them skip, saying why, on a machine that lacks them.
    """
    if not SHARED.is_dir():
        pytest.skip(
            f"reference files not found at {SHARED} (../shared beside the repo)"
        )
    return SHARED


@pytest.fixture
def seed() -> int:
    import random

    import numpy as np

    random.seed(0)
    np.random.seed(0)
    try:
        import torch

        torch.manual_seed(0)
    except ImportError:
        pass
    return 0


# --- a local web server for download tests -------------------------------------
class LocalServer:
    """A web server on 127.0.0.1 (never the internet) that can misbehave.

    ``serve(path, body, announce=None, cut_after=None, chunked=False)`` returns
    the URL of ``body``: ``announce`` is the Content-Length sent (default the
    true length; a larger one lies), ``cut_after`` hangs up after that many
    bytes of the body, ``chunked`` sends it in chunked transfer encoding (no
    Content-Length). Other paths answer 404. ``closed_url`` is on a port
    nobody listens on (an offline attempt).
    """

    def __init__(self):
        import http.server
        import socket
        import threading

        routes = self.routes = {}

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                self.close_connection = True
                if self.path not in routes:
                    self.send_error(404)
                    return
                body, announce, cut_after, chunked = routes[self.path]
                self.send_response(200)
                self.send_header("Connection", "close")
                if chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                else:
                    self.send_header("Content-Length", str(announce))
                self.end_headers()
                sent = body if cut_after is None else body[:cut_after]
                if chunked:  # one chunk that announces the whole body
                    self.wfile.write(b"%x\r\n" % len(body) + sent)
                    if cut_after is None:
                        self.wfile.write(b"\r\n0\r\n\r\n")
                else:
                    self.wfile.write(sent)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        with socket.socket() as s:  # a free port, closed again
            s.bind(("127.0.0.1", 0))
            self.closed_url = f"http://127.0.0.1:{s.getsockname()[1]}/gone.txt"

    def serve(self, path, body, announce=None, cut_after=None, chunked=False):
        announce = len(body) if announce is None else announce
        self.routes[path] = (body, announce, cut_after, chunked)
        return self.url + path

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def http_server():
    """A LocalServer for the test, shut down after it."""
    server = LocalServer()
    yield server
    server.close()


# --- small model configs shared by the model tests ---------------------------
LLAMA_LIKE = dict(
    pos="rope", norm="rmsnorm", mlp="swiglu", bias=False, tie_weights=False
)  # the fields that make a GPTConfig Llama-shaped (add n_kv_heads for GQA)


@pytest.fixture
def tiny_cfg():
    """A GPT-2-shaped GPTConfig small enough for any test (vocab 50, width 32)."""
    from labkit.model import GPTConfig

    return GPTConfig(vocab_size=50, context_len=16, n_layers=2, n_heads=4, d_model=32)


@pytest.fixture
def tiny_llama_cfg(tiny_cfg):
    """tiny_cfg in Llama's layout with grouped-query attention (2 kv heads)."""
    import dataclasses

    return dataclasses.replace(tiny_cfg, n_kv_heads=2, **LLAMA_LIKE)
