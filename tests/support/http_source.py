"""A real HTTP server on loopback serving a folder, as the LSFB team's server serves the
dataset: Content-Length and Last-Modified on every file, and faults on demand."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class _Handler(SimpleHTTPRequestHandler):
    server: _Server

    def log_message(self, *args) -> None:  # quiet test output
        pass

    def do_GET(self) -> None:
        path = self.path.lstrip("/")
        with self.server.lock:
            self.server.requests[path] += 1
            cut = self.server.truncate.get(path, 0)
            if cut:
                self.server.truncate[path] = cut - 1
        if cut:
            # announce the whole file, send half of it, hang up: a dropped connection
            data = (Path(self.directory) / path).read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.truncate: dict[str, int] = {}
        """path -> how many more times to cut it short."""


@contextmanager
def serve_folder(folder: Path) -> Iterator[_Server]:
    server = _Server(("127.0.0.1", 0), partial(_Handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
