"""The worker's own `/metrics`: an HTTP listener on `COUPONSVC_WORKER_METRICS_LISTEN`.

`couponsvc worker` runs no web app, and its counts (jobs, deliveries) are of its own
processes, on whatever host it runs: each worker host is scraped on its own. The
listener is a thread of the worker process (of the supervisor with `--processes N`,
which answers for its children's directory), serving the same allow list as the web
app's `/metrics`; any other address or path is a 404.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .endpoint import Network, allowed


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the standard library's name
        pass  # a scrape every 15 s is not news


def parse_listen(raw: str) -> tuple[str, int]:
    """`host:port` (`[::1]:9101` for IPv6) → (host, port); ValueError when malformed."""
    host, sep, port = raw.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise ValueError(f"expected host:port, got {raw!r}")
    return host.strip("[]"), int(port)


def serve(listen: str, networks: Sequence[Network], registry: Callable[[], object]) -> _Server:
    """Answer `GET /metrics` on `listen` from a daemon thread; the server (to `shutdown()`)."""

    def app(environ, start_response):
        if environ.get("PATH_INFO") != "/metrics" or not allowed(environ.get("REMOTE_ADDR"), networks):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        body = generate_latest(registry())
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST),
                                  ("Content-Length", str(len(body)))])
        return [body]

    host, port = parse_listen(listen)
    if ":" in host:
        import socket

        class _Server6(_Server):
            address_family = socket.AF_INET6

        server = make_server(host, port, app, server_class=_Server6, handler_class=_QuietHandler)
    else:
        server = make_server(host, port, app, server_class=_Server, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="couponsvc-metrics", daemon=True).start()
    return server
