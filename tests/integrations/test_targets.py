"""Adapters must not become a way into the merchant's or our own network."""

import ipaddress
import socket

import pytest
import requests

from integrations import http, targets
from integrations.adapter import Context, PermanentError, RetryableError
from integrations.targets import is_public


@pytest.fixture
def no_connections(monkeypatch):
    """Fail the test if anything tries to open a TCP connection."""
    attempts = []

    def refuse(sock, address):
        attempts.append(address)
        raise AssertionError(f"connection attempted to {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/hook", "http://10.0.0.1/hook", "http://[::1]/hook",
    "http://169.254.169.254/latest/meta-data/", "http://localhost:6379/",
    "http://192.168.1.20/", "http://172.16.0.1/", "http://100.64.0.1/", "http://0.0.0.0/",
    "http://[::ffff:127.0.0.1]/", "http://[fe80::1]/", "http://[fc00::1]/",
    "http://224.0.0.1/", "http://2130706433/", "https://127.1/", "http://[fec0::1]/",
    "HTTP://10.0.0.5/hook"])
def test_private_targets_are_refused_before_any_connection(url, no_connections):
    with pytest.raises(PermanentError, match="target refused") as caught:
        http.post(Context(allow_private_targets=False), url, json={})
    assert not caught.value.disable
    assert "COUPONSVC_ALLOW_PRIVATE_WEBHOOK_TARGETS" in caught.value.excerpt
    assert no_connections == []


def test_the_switch_allows_them(receiver):
    assert http.post(Context(allow_private_targets=True), receiver.url).status_code == 200


@pytest.mark.parametrize(("address", "public"), [
    ("93.184.216.34", True), ("2606:2800:220:1:248:1893:25c8:1946", True),
    ("8.8.8.8", True), ("127.0.0.1", False), ("10.1.2.3", False), ("172.31.255.255", False),
    ("192.168.0.1", False), ("169.254.169.254", False), ("100.100.100.200", False),
    ("0.0.0.0", False), ("255.255.255.255", False), ("239.1.1.1", False),
    ("198.18.0.1", False), ("::", False), ("::1", False), ("fe80::1", False),
    ("fd00:ec2::254", False), ("ff02::1", False), ("::ffff:10.0.0.1", False),
    ("::ffff:8.8.8.8", True), ("2002:7f00:1::", False), ("64:ff9b::a00:1", False),
    ("64:ff9b::808:808", True), ("fec0::1", False), ("feff:ffff::1", False),
    ("2001:db8::1", False), ("192.0.2.1", False)])
def test_public_addresses(address, public):
    assert is_public(ipaddress.ip_address(address)) is public


def test_a_name_that_resolves_to_loopback_is_refused(no_connections):
    with pytest.raises(PermanentError, match="localhost resolves to"):
        http.post(Context(allow_private_targets=False), "http://localhost/hook")
    assert no_connections == []


def test_dns_rebinding_is_caught_on_the_connected_socket(receiver, monkeypatch):
    """The name looked public when checked, but the connection reached 127.0.0.1."""
    monkeypatch.setattr(targets, "resolve",
                        lambda host, port: [ipaddress.ip_address("93.184.216.34")])
    with pytest.raises(PermanentError, match="connected to 127.0.0.1"):
        http.post(Context(allow_private_targets=False), receiver.url + "/hook", json={})
    assert receiver.requests == []


def test_a_plain_caller_session_gets_the_guard(receiver, monkeypatch):
    monkeypatch.setattr(targets, "resolve",
                        lambda host, port: [ipaddress.ip_address("93.184.216.34")])
    context = Context(allow_private_targets=False, session=requests.Session())
    with pytest.raises(PermanentError, match="connected to 127.0.0.1"):
        http.post(context, receiver.url)
    assert receiver.requests == []


def test_a_name_that_does_not_resolve_is_retried(monkeypatch):
    def fail(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    with pytest.raises(RetryableError, match="could not resolve"):
        http.post(Context(allow_private_targets=False), "https://no-such-host.example/")


@pytest.mark.parametrize(("url", "message"), [
    ("http:///hook", "no host"), ("https://example.com:99999/", "invalid target URL")])
def test_malformed_urls_are_permanent(url, message, no_connections):
    with pytest.raises(PermanentError, match=message):
        http.post(Context(allow_private_targets=False), url)


def test_teredo_addresses_are_judged_by_the_client_address():
    # Teredo server 65.54.227.120, client 192.168.0.1 (obfuscated as ~c0a8:0001)
    teredo = ipaddress.ip_address("2001:0:4136:e378:8000:63bf:3f57:fffe")
    assert teredo.teredo is not None
    assert is_public(teredo) is is_public(teredo.teredo[1])
