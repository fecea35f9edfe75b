"""A small HTTP file server on 127.0.0.1 for download tests, with switches to misbehave.

It serves the files under `root` (URL path = path relative to root), honours `Range: bytes=N-`
with 206 / 416 answers, and records every request. Switches (each reset by the test):
    drop_after      send the headers, then only this many body bytes and close (once)
    fail_status     answer this status instead of the file, `fail_times` times
    corrupt         serve the file with its first byte changed
    ignore_range    answer 200 with the whole file even to a Range request
Used as a context manager, which shuts the server down on exit.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit


@dataclass
class Request:
    path: str
    range: str | None


@dataclass
class ServerState:
    root: Path
    drop_after: int | None = None
    fail_status: int | None = None
    fail_times: int = 1
    corrupt: bool = False
    ignore_range: bool = False
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        state = self.server.state
        url_path = unquote(urlsplit(self.path).path).lstrip("/")
        with state.lock:
            state.requests.append(Request(url_path, self.headers.get("Range")))
            fail = state.fail_status if state.fail_times > 0 else None
            if fail is not None:
                state.fail_times -= 1
            drop_after, state.drop_after = state.drop_after, None
        if fail is not None:
            self.send_error(fail)
            return
        file = (state.root / url_path).resolve()
        if not file.is_file() or state.root.resolve() not in file.parents:
            self.send_error(404)
            return
        data = file.read_bytes()
        if state.corrupt:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        self._send(data, drop_after)

    def _send(self, data: bytes, drop_after: int | None) -> None:
        start = self._range_start()
        if start is not None and start >= len(data):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if start is None:
            self.send_response(200)
            start = 0
        else:
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body if drop_after is None else body[:drop_after])
        self.wfile.flush()
        self.close_connection = True

    def _range_start(self) -> int | None:
        header = self.headers.get("Range")
        if not header or self.server.state.ignore_range:
            return None
        assert header.startswith("bytes=") and header.endswith("-"), header
        return int(header[len("bytes=") : -1])


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: ServerState


class LoopbackServer:
    """`with LoopbackServer(root) as server:` serves root at `server.url` until the block ends."""

    def __init__(self, root: Path) -> None:
        self.state = ServerState(Path(root))
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.state = self.state
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
