"""A model server whose predict takes a while, run as its own process (the graceful
shutdown test signals it): `python -m tests.support.slow_model_server <port> <predict seconds>`."""

from __future__ import annotations

import socket
import sys

from mlops_assets.serving.app import ServerState, create_app
from mlops_assets.serving.limits import Limits
from mlops_assets.serving.server import serve
from tests.support.model_servers import CountingAdapter, counting_model

if __name__ == "__main__":
    port, seconds = int(sys.argv[1]), float(sys.argv[2])
    limits = Limits(drain_seconds=1.0, grace_seconds=10.0)
    state = ServerState()
    app = create_app(counting_model(CountingAdapter(seconds=seconds)), limits, state)
    listening = socket.create_server(("127.0.0.1", port))
    print("listening", flush=True)
    serve(app, state, limits, listening)
    print("exited cleanly", flush=True)
