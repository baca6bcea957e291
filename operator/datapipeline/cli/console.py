"""``datapipeline console``: the web console on http://127.0.0.1:PORT (docs/console.md)."""

from __future__ import annotations

import argparse
import socket
import sys
from typing import Any

DEFAULT_PORT = 8089


def add_parser(subparsers: Any) -> None:
    text = "serve the web console: pipelines, graphs, runs, logs and day-2 actions (docs/console.md)"
    parser: argparse.ArgumentParser = subparsers.add_parser("console", help=text, description=text)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port on 127.0.0.1 (default {DEFAULT_PORT})")
    parser.add_argument("-n", "--namespace", action="append", default=None,
                        help="only this namespace; repeat for several (default: all namespaces)")
    parser.add_argument("--in-cluster", action="store_true",
                        help="each request must carry a bearer token and acts with it (serves on every address)")
    parser.add_argument("--address", default=None,
                        help="address to serve on (default: 127.0.0.1; with --in-cluster 0.0.0.0)")
    parser.add_argument("--open", action="store_true", help="open the console in your web browser once it serves")
    parser.set_defaults(func=cmd_console)


def cmd_console(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536:
        raise ValueError(f"--port: {args.port} is not a port number (1-65535)")
    try:
        import uvicorn

        from datapipeline.console.app import create_app
    except ModuleNotFoundError as error:
        raise ValueError(f"the console needs {error.name}: pip install 'kube-datapipeline[console]'") from None
    from datapipeline.console.auth import Access
    from datapipeline.console.cache import WatchCache
    from datapipeline.k8s import api

    host = args.address or ("0.0.0.0" if args.in_cluster else "127.0.0.1")  # in the cluster a Service fronts it
    _check_port(host, args.port)
    api.load()  # no kube context: one clear message now, not a page of errors later
    cache = WatchCache(tuple(args.namespace or ()), api.custom)
    cache.start()
    cache.wait_ready(15)
    # Locally only loopback names may be asked for: a DNS-rebinding page cannot reach the console's actions.
    hosts = None if args.in_cluster else ["127.0.0.1", "localhost"]
    app = create_app(cache, Access(in_cluster=args.in_cluster), allowed_hosts=hosts)
    url = f"http://{host}:{args.port}/"
    print(f"datapipeline console on {url} (Ctrl-C stops it)", file=sys.stderr, flush=True)
    config = uvicorn.Config(app, host=host, port=args.port, log_level="warning", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    if args.open:
        _open_when_serving(server, url)
    server.run()
    return 0


def _check_port(host: str, port: int) -> None:
    """One clear message when the port is taken (another console?), before any watch starts."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds it
        try:
            probe.bind((host, port))
        except OSError as error:
            raise ValueError(f"--port {port}: cannot listen on {host}: {error.strerror or error}") from None


def _open_when_serving(server: Any, url: str) -> None:
    """Opens the browser once uvicorn says it serves (a browser opened before would show a refused connection)."""
    import threading
    import time
    import webbrowser

    def wait_then_open() -> None:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.1)
        if server.started and not webbrowser.open(url):
            print(f"no web browser found here: open {url} yourself", file=sys.stderr, flush=True)

    threading.Thread(target=wait_then_open, name="open-browser", daemon=True).start()
