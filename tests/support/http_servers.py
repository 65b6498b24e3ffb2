"""HTTP servers in this process on loopback: a JSON API a client under test calls, and an
ASGI app under uvicorn."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.processes import free_port, wait_for_http


@contextmanager
def json_api(answer) -> Iterator[tuple[str, list[str | None]]]:
    """An HTTP API on loopback for a client under test: `answer(path)` gives (status, JSON
    body) for each GET. Yields its URL and the Authorization header of every request."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            seen.append(self.headers.get("Authorization"))
            status, body = answer(self.path)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:  # the test's output stays its own
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", seen
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def uvicorn_thread(app) -> Iterator[str]:
    """`app` under uvicorn on a free loopback port in this process, until the block ends."""
    import threading

    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="critical")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.config.port}"
        wait_for_http(f"{url}/v2/health/live")
        yield url
    finally:
        # the app's shutdown runs here (the inference log flushes its last buffers): the
        # block's caller reads what it wrote, so it waits for it, however loaded the machine
        server.should_exit = True
        thread.join(timeout=120)
        assert not thread.is_alive(), f"uvicorn on {url} did not stop within 120 s"
