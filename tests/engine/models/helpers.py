"""Tiny checkpoints, a stand-in catalog entry and a local HTTP file server for model tests."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from studio.engine.models import _catalog
from studio.engine.models._catalog import CatalogEntry


def save_tiny_dncnn(path: Path, seed: int = 0) -> Path:
    """A randomly initialised KAIR-layout DnCNN (8 channels, 5 layers), as spandrel expects."""
    import torch
    from spandrel.architectures.DnCNN import DnCNN

    torch.manual_seed(seed)
    state = DnCNN(in_nc=1, out_nc=1, nc=8, nb=5).state_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save(state, path)
    return path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def entry_for(data: bytes, **fields: object) -> CatalogEntry:
    """A catalog entry whose sha256 is that of `data` (override any field)."""
    values: dict[str, object] = {
        "id": "tiny-dncnn",
        "name": "Tiny DnCNN (test)",
        "task": "denoise",
        "architecture": "DnCNN",
        "file": "tiny_dncnn.pth",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "licence": "CC-BY-NC-4.0",
        "commercial_use": False,
        "source": "https://example.invalid/tiny",
        "params": {"strength": 0.5},
    }
    values.update(fields)
    return CatalogEntry.model_validate(values)


def use_catalog(monkeypatch: pytest.MonkeyPatch, *entries: CatalogEntry) -> None:
    """Replace the shipped catalog with `entries` for the rest of the test."""
    monkeypatch.setattr(_catalog, "_shipped", lambda: tuple(entries))


@dataclass
class FileServer:
    """Serves `files` by path; honours Range unless told not to; can cut a transfer short.

    `endless` sends a file followed by zeros for ever, without a Content-Length; `announce`
    replaces the Content-Length it sends.
    """

    files: dict[str, bytes] = field(default_factory=dict)
    ranges: bool = True
    cut_next_after: int | None = None
    endless: bool = False
    announce: int | None = None
    requests: list[dict[str, str]] = field(default_factory=list)
    port: int = 0

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"


def _handler(server: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            server.requests.append({"path": self.path, **dict(self.headers)})
            data = server.files.get(self.path.lstrip("/"))
            if data is None:
                self.send_error(404)
                return
            if server.endless:
                self._send_endless(data)
                return
            start = self._range_start() if server.ranges else 0
            if start and start >= len(data):
                self.send_error(416)
                return
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            length = server.announce if server.announce is not None else len(data) - start
            self.send_header("Content-Length", str(length))
            self.end_headers()
            body = data[start:]
            if server.cut_next_after is not None:
                body, server.cut_next_after = body[: server.cut_next_after], None
                self.close_connection = True
            self.wfile.write(body)

        def _send_endless(self, data: bytes) -> None:
            self.send_response(200)
            self.end_headers()
            self.close_connection = True
            try:
                self.wfile.write(data)
                while True:
                    self.wfile.write(bytes(1 << 16))
            except OSError:  # the client hung up: what the test expects
                pass

        def _range_start(self) -> int:
            header = self.headers.get("Range", "")
            return int(header.removeprefix("bytes=").split("-")[0]) if header else 0

    return Handler


@contextmanager
def serve() -> Iterator[FileServer]:
    """A FileServer on 127.0.0.1 (any free port), in a thread, for the duration of the block."""
    state = FileServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
