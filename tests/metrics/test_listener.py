"""The worker's /metrics listener, and the multiprocess directory's helpers, in process."""

from __future__ import annotations

import http.client
import importlib
import ipaddress
import shutil
import sys

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Counter

from couponsvc.metrics import listener, multiprocess
from couponsvc.tracing import MASTER_PID_VARIABLE
from tests.racing import free_port

LOOPBACK = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]


def get(port: int, path: str, host: str = "127.0.0.1") -> tuple[int, str]:
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def test_the_listener_answers_metrics_to_allowed_addresses_only():
    registry = CollectorRegistry()
    Counter("couponsvc_listener_probe", "a probe", registry=registry).inc(3)
    port = free_port()
    server = listener.serve(f"127.0.0.1:{port}", LOOPBACK, lambda: registry)
    try:
        status, text = get(port, "/metrics")
        assert status == 200 and "couponsvc_listener_probe_total 3.0" in text
        assert get(port, "/")[0] == 404 and get(port, "/metrics/x")[0] == 404
    finally:
        server.shutdown()
        server.server_close()
    other = free_port()
    server = listener.serve(f"127.0.0.1:{other}", [ipaddress.ip_network("10.0.0.0/8")], lambda: registry)
    try:
        status, text = get(other, "/metrics")
        assert status == 404 and "probe" not in text
    finally:
        server.shutdown()
        server.server_close()


def test_the_listener_listens_on_ipv6_too():
    port = free_port()
    try:
        server = listener.serve(f"[::1]:{port}", LOOPBACK, lambda: CollectorRegistry())
    except OSError:
        pytest.skip("no IPv6 loopback here")
    try:
        assert get(port, "/metrics", host="::1")[0] == 200
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("raw", ["9101", ":9101", "host:", "host:port", "host:0", "host:70000"])
def test_a_listen_address_is_host_and_port(raw):
    with pytest.raises(ValueError):
        listener.parse_listen(raw)


def test_the_group_directory_is_named_emptied_and_read(tmp_path, monkeypatch):
    monkeypatch.setenv(multiprocess.VARIABLE, "recorded")  # so that the end restores what was
    monkeypatch.delenv(multiprocess.VARIABLE)
    assert multiprocess.directory() is None and multiprocess.registry() is REGISTRY
    made = multiprocess.prepare()  # a new temporary directory, named in the environment
    try:
        assert multiprocess.directory() == made
        monkeypatch.delenv(multiprocess.VARIABLE)
        given = tmp_path / "group"
        assert multiprocess.prepare(str(given)) == str(given) and given.is_dir()
        (given / "counter_123.db").write_bytes(b"")
        (given / "notes.txt").write_text("kept")
        multiprocess.wipe(str(given))
        assert [path.name for path in given.iterdir()] == ["notes.txt"]
        assert list(multiprocess.registry(str(given)).collect()) == []  # nothing counted yet
    finally:
        shutil.rmtree(made, ignore_errors=True)


def test_gunicorn_hooks(tmp_path, monkeypatch):
    """couponsvc/gunicorn_conf.py's hooks: the directory emptied at start, a dead worker's
    live gauges dropped, tracing started after the fork (off here), the directory kept at
    exit when it was given."""
    directory = tmp_path / "gunicorn"
    directory.mkdir()
    monkeypatch.setenv(multiprocess.VARIABLE, str(directory))
    monkeypatch.setenv(MASTER_PID_VARIABLE, "0")  # restored after the test, as the directory
    monkeypatch.delitem(sys.modules, "couponsvc.gunicorn_conf", raising=False)
    conf = importlib.import_module("couponsvc.gunicorn_conf")
    try:
        assert conf.wsgi_app == "couponsvc:create_app()" and conf.accesslog is None
        assert conf.logconfig_dict["loggers"]["gunicorn.error"]["handlers"] == ["error_console"]
        (directory / "counter_4242.db").write_bytes(b"")
        conf.on_starting(None)
        assert list(directory.iterdir()) == []
        (directory / "gauge_livesum_4242.db").write_bytes(b"")
        (directory / "counter_4242.db").write_bytes(b"")
        conf.child_exit(None, type("Worker", (), {"pid": 4242})())
        assert [path.name for path in directory.iterdir()] == ["counter_4242.db"]
        conf.post_fork(None, None)
        conf.on_exit(None)
        assert directory.is_dir()
    finally:
        sys.modules.pop("couponsvc.gunicorn_conf", None)
