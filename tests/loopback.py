"""A file server on 127.0.0.1 for download tests (the only address tests may contact)."""
from __future__ import annotations

import contextlib
import functools
import socket
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep the test output clean
        pass


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[str]:
    """Serve ``folder`` over HTTP on 127.0.0.1; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def refused_url() -> str:
    """A 127.0.0.1 address where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def online(monkeypatch) -> None:
    """Tests of the online path: ignore offline switches set in the surrounding environment."""
    for key in ("HF_HUB_OFFLINE", "DISTKD_OFFLINE", "DISTKD_MIRROR"):
        monkeypatch.delenv(key, raising=False)
