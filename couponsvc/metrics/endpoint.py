"""`/metrics`, for the addresses of `COUPONSVC_METRICS_ALLOW` only, and the request count.

The client's address is `request.remote_addr`, which `COUPONSVC_TRUSTED_PROXIES` takes
from `X-Forwarded-For` (werkzeug's ProxyFix, set up by `create_app`); any other address
gets the 404 of a path that does not exist. The answer is Prometheus' text format: the
counts of every process of this gunicorn (`multiprocess.py`) and the deployment's figures
(`cluster.py`). Each answered request is counted by method (`OTHER` for one HTTP does not
define), route template and status: labels a client cannot multiply.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from flask import Blueprint, Flask, Response, abort, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from . import multiprocess
from .catalog import HTTP_REQUESTS
from .cluster import ClusterFigures
from .switch import counting

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
UNMATCHED = "<unmatched>"

metrics = Blueprint("metrics", __name__)


def init_app(app: Flask) -> None:
    if not app.config["METRICS"]:
        return
    figures = CollectorRegistry(auto_describe=False)
    figures.register(ClusterFigures(app))
    app.extensions["couponsvc.cluster_figures"] = figures
    app.register_blueprint(metrics)
    app.after_request(_count)


def allowed(address: str | None, networks: Sequence[Network]) -> bool:
    """Is `address` in one of `networks`? (An IPv4 address mapped in IPv6 counts as IPv4.)"""
    try:
        ip = ipaddress.ip_address((address or "").split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == network.version and ip in network for network in networks)


@metrics.get("/metrics")
def scrape() -> Response:
    if not allowed(request.remote_addr, current_app.config["METRICS_ALLOW"]):
        abort(404)
    body = (generate_latest(multiprocess.registry())
            + generate_latest(current_app.extensions["couponsvc.cluster_figures"]))
    return Response(body, content_type=CONTENT_TYPE_LATEST)


_requests: dict[tuple[str, str, int], object] = {}  # each label set's child, looked up once
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _count(response: Response) -> Response:
    if counting():
        rule = request.url_rule
        count(request.method, rule.rule if rule is not None else UNMATCHED, response.status_code)
    return response


def count(method: str, route: str, status: int) -> None:
    """One answered request in `couponsvc_http_requests_total`; the caller asked `counting()`."""
    key = (method if method in METHODS else "OTHER", route, status)  # OTHER: a client's invention
    child = _requests.get(key)
    if child is None:
        child = _requests[key] = HTTP_REQUESTS.labels(key[0], key[1], str(key[2]))
    child.inc()
