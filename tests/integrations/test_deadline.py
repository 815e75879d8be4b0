"""One wall-clock deadline per outbound call: a receiver dribbling bytes cannot hold a worker."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from integrations import deadline, http, targets
from integrations.adapter import Context, RetryableError

HEADERS = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nX-Padding: dribble\r\n\r\n"


class Dribbler:
    """A 127.0.0.1 server that reads a request, sends the first `at_once` bytes of `answer`,
    then the rest one byte per `every` seconds (each byte well within a per-read timeout),
    counting what it managed to send."""

    def __init__(self, answer: bytes, every: float, at_once: int = 0) -> None:
        self.answer, self.every, self.at_once, self.sent = answer, every, at_once, 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/hook"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        connection, _ = self._listener.accept()
        with connection:
            connection.recv(65536)
            try:
                connection.sendall(self.answer[:self.at_once])
                self.sent = self.at_once
                for byte in self.answer[self.at_once:]:
                    time.sleep(self.every)
                    connection.sendall(bytes([byte]))
                    self.sent += 1
            except OSError:
                pass  # the caller hung up: what we wanted

    def close(self) -> None:
        self._listener.close()
        self._thread.join(timeout=30)


@pytest.fixture
def dribbler(request):
    server = Dribbler(*request.param)
    yield server
    server.close()


@pytest.mark.parametrize("dribbler", [(HEADERS + b"ok", 0.2)], indirect=True)
def test_headers_dribbled_byte_by_byte_are_cut_at_the_deadline(dribbler):
    with pytest.raises(RetryableError) as caught:
        http.post(Context(timeout=1.0, allow_private_targets=True), dribbler.url, json={"a": 1})
    assert caught.value.status_code is None  # neither the status line nor the headers were complete
    assert "no answer from 127.0.0.1 within 1 s" in caught.value.excerpt
    dribbler.close()  # the server stops at the first byte the shut socket refuses
    assert dribbler.sent < len(HEADERS) // 2, dribbler.sent


BODY = b"x" * 60
SLOW_BODY = HEADERS.replace(b"Length: 2", b"Length: 60") + BODY


@pytest.mark.parametrize("dribbler", [(SLOW_BODY, 0.2, len(SLOW_BODY) - len(BODY))], indirect=True)
def test_a_body_dribbled_past_the_deadline_is_no_answer(dribbler):
    with pytest.raises(RetryableError) as caught:
        http.post(Context(timeout=1.0, allow_private_targets=True), dribbler.url)
    assert caught.value.status_code == 200
    assert "took longer than 1 s" in caught.value.excerpt
    dribbler.close()
    assert dribbler.sent < len(SLOW_BODY) - len(BODY) // 2, dribbler.sent


def test_every_session_keeps_to_the_deadline():
    """Guarded (private targets refused) or not, a session's connections are watched."""
    assert issubclass(targets.GuardedAdapter, deadline.WatchedAdapter)
    for allow in (False, True):
        session = http.new_session(allow_private_targets=allow)
        assert isinstance(session.get_adapter("https://example.com"), deadline.WatchedAdapter)
