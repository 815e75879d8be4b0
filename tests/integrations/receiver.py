"""A tiny HTTP server on 127.0.0.1 that records requests and answers as scripted."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Part:
    """One field of a multipart/form-data body."""

    name: str
    filename: str | None
    content_type: str
    data: bytes

    @property
    def text(self) -> str:
        return self.data.decode()


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, list[str]]
    raw_query: str
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode(), keep_blank_values=True)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def multipart(self) -> dict[str, list[Part]]:
        """The fields of a multipart/form-data body by name (ValueError when it is not one)."""
        if self.content_type != "multipart/form-data":
            raise ValueError(f"not multipart/form-data: {self.content_type!r}")
        head = f"Content-Type: {self.headers['content-type']}\r\n\r\n".encode()
        message = BytesParser(policy=HTTP).parsebytes(head + self.body)
        parts: dict[str, list[Part]] = {}
        for item in message.iter_parts():
            name = item.get_param("name", header="content-disposition")
            parts.setdefault(name, []).append(Part(
                name, item.get_filename(), item.get_content_type(),
                item.get_payload(decode=True) or b""))
        return parts

    def fields(self) -> dict[str, list[str]]:
        """Form fields, urlencoded or multipart alike (files left out)."""
        if self.content_type == "multipart/form-data":
            return {name: [part.text for part in found if part.filename is None]
                    for name, found in self.multipart().items()}
        return self.form()


@dataclass
class Answer:
    status: int = 200
    body: bytes = b'{"ok": true}'
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drip: float = 0.0  # seconds between the body's bytes


class Receiver:
    """Answers each request with the next scripted `Answer`, then with `default`.

    `handler`, when set, computes the answer from the request instead.
    """

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.script: deque[Answer] = deque()
        self.default = Answer()
        self.handler: Callable[[Received], Answer] | None = None
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._server.handle_error = lambda request, address: None  # clients that gave up
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,),
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def answer(self, status: int = 200, body: bytes | str | dict | list = b"",
               headers: dict[str, str] | None = None, delay: float = 0.0,
               drip: float = 0.0) -> None:
        if isinstance(body, dict | list):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.script.append(Answer(status, body, headers or {}, delay, drip))

    def next_answer(self, received: Received) -> Answer:
        if self.handler is not None:
            return self.handler(received)
        return self.script.popleft() if self.script else self.default

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler_for(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = 1 << 16  # one write per answer: no Nagle / delayed-ACK stalls

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            received = Received(self.command, parts.path, parse_qs(parts.query), parts.query,
                                {k.lower(): v for k, v in self.headers.items()}, body)
            receiver.requests.append(received)
            answer = receiver.next_answer(received)
            if answer.delay:
                time.sleep(answer.delay)
            try:
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                if answer.drip:
                    self.wfile.flush()
                    for byte in answer.body:
                        time.sleep(answer.drip)
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                else:
                    self.wfile.write(answer.body)
                self.wfile.flush()
            except OSError:
                pass  # the client gave up (a timeout test)

        do_GET = do_POST = _serve

        def log_message(self, *args) -> None:
            pass

    return Handler
