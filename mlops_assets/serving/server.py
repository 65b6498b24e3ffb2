"""uvicorn with the shutdown Kubernetes expects: on SIGTERM readiness turns false at once,
the server keeps serving for `drain_seconds` (while the endpoints controller takes the pod
out of the Service), then stops accepting, gives the requests in flight `grace_seconds` to
finish, and exits 0. A second SIGTERM, or SIGINT, stops draining at once."""

from __future__ import annotations

import signal
import socket
import threading
from types import FrameType

import uvicorn

from mlops_assets.serving.app import ServerState
from mlops_assets.serving.limits import Limits


class GracefulServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, state: ServerState, limits: Limits) -> None:
        super().__init__(config)
        self.state = state
        self.drain_seconds = limits.drain_seconds
        self._draining = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.state.ready = False
        if sig != signal.SIGTERM:
            super().handle_exit(sig, frame)
            return
        # SIGTERM is how Kubernetes asks: a shutdown that finished its work exits 0, so the
        # signal is not re-raised after it (uvicorn's default)
        if self._draining or not self.drain_seconds:
            self.should_exit = True
            return
        self._draining = True
        timer = threading.Timer(self.drain_seconds, lambda: setattr(self, "should_exit", True))
        timer.daemon = True
        timer.start()


def serve(app, state: ServerState, limits: Limits, listening: socket.socket) -> None:
    """Run `app` on an already bound socket until SIGTERM (or SIGINT) ends it."""
    config = uvicorn.Config(
        app,
        log_level="info",
        timeout_graceful_shutdown=int(limits.grace_seconds) or None,
        # slow clients: uvicorn closes idle keep-alive connections; bodies have their own
        # read timeout in the app
        timeout_keep_alive=5,
        access_log=False,  # a line per request costs more than the request at this rate
    )
    GracefulServer(config, state, limits).run(sockets=[listening])
