"""Race harness: several real app instances (gunicorn processes) and a crowd of clients.

`Cluster` starts N gunicorn processes of `couponsvc:create_app()` on free local ports,
configured only through the environment as in production, and stops them by pid.
`race()` opens one HTTP connection per call, holds every thread at a barrier and
releases them together, so the requests really overlap on the server side.
Only the standard library talks HTTP here: nothing in the app is bypassed.
"""

from __future__ import annotations

import csv
import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parent.parent
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
HTTP_TIMEOUT = 120  # seconds: a hung server fails the test instead of hanging it
BOOT_DEADLINE = 90


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def plain_postgres_url(uri: str) -> str:
    """`postgresql+psycopg://…` → `postgresql://…`: the form hosting providers hand out."""
    scheme, sep, rest = uri.partition("://")
    assert sep and scheme.startswith("postgresql"), uri
    return f"postgresql://{rest}"


# ------------------------------------------------------------------------------ HTTP --
@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    text: str
    server: int = -1  # index of the instance that answered

    @property
    def json(self) -> Any:
        return json.loads(self.text)

    @property
    def code(self) -> str | None:
        """The problem `code` of an error reply (None for a success)."""
        if self.status < 400:
            return None
        try:
            return self.json.get("code")
        except ValueError:
            return f"<not json: {self.text[:200]!r}>"

    def __repr__(self) -> str:
        return f"Reply({self.status}, {self.text[:300]!r})"


@dataclass
class Request:
    method: str
    path: str
    key: str | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def target(self) -> str:
        return self.path if self.path.startswith("/") else f"/api/v1/{self.path}"

    def encoded(self) -> tuple[bytes | None, dict[str, str]]:
        headers = {"Accept": "application/json", **self.headers}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        if self.body is None:
            return None, headers
        headers["Content-Type"] = "application/json; charset=utf-8"
        return json.dumps(self.body, ensure_ascii=False).encode("utf-8"), headers


def _send(connection: http.client.HTTPConnection, request: Request) -> Reply:
    payload, headers = request.encoded()
    connection.request(request.method, request.target(), body=payload, headers=headers)
    response = connection.getresponse()
    text = response.read().decode("utf-8", "replace")
    return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, text)


# --------------------------------------------------------------------------- cluster --
@dataclass
class Instance:
    index: int
    port: int
    process: subprocess.Popen
    log_path: Path

    def connect(self) -> http.client.HTTPConnection:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=HTTP_TIMEOUT)
        connection.connect()
        return connection

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError as error:
            return f"<no log: {error}>"


class Cluster:
    """N gunicorn processes of the app, all on one database, one Redis, one QR key."""

    def __init__(self, env: dict[str, str], log_dir: Path, count: int = 3,
                 workers: int = 2, threads: int = 8) -> None:
        self.env = env
        self.log_dir = log_dir
        self.count = count
        self.workers = workers
        self.threads = threads
        self.instances: list[Instance] = []

    # lifecycle ----------------------------------------------------------------------
    def start(self) -> Cluster:
        for index in range(self.count):
            port = free_port()
            log_path = self.log_dir / f"gunicorn-{index}.log"
            log = open(log_path, "wb")  # noqa: SIM115 - the child process owns it
            try:
                process = subprocess.Popen(
                    [GUNICORN, "-w", str(self.workers), "--threads", str(self.threads),
                     "-b", f"127.0.0.1:{port}", "--graceful-timeout", "10",
                     # one control socket per user is shared by every master: keep out of it
                     "--no-control-socket", "couponsvc:create_app()"],
                    cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            finally:
                log.close()
            self.instances.append(Instance(index, port, process, log_path))
        for instance in self.instances:
            self._wait_ready(instance)
        return self

    def _wait_ready(self, instance: Instance) -> None:
        deadline = time.monotonic() + BOOT_DEADLINE
        last: object = None
        while time.monotonic() < deadline:
            if instance.process.poll() is not None:
                raise RuntimeError(f"gunicorn #{instance.index} exited with "
                                   f"{instance.process.returncode}:\n{instance.log_tail()}")
            try:
                connection = instance.connect()
                try:
                    health = _send(connection, Request("GET", "/healthz"))
                    ready = _send(connection, Request("GET", "/readyz"))
                finally:
                    connection.close()
                if health.status == 200 and ready.status == 200:
                    return
                last = (health, ready)
            except OSError as error:
                last = error
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn #{instance.index} not ready on port {instance.port} "
                           f"after {BOOT_DEADLINE} s (last: {last!r}):\n{instance.log_tail()}")

    def stop(self) -> None:
        """SIGTERM each master by pid (it stops its workers); SIGKILL if it lingers."""
        for instance in self.instances:
            if instance.process.poll() is None:
                instance.process.send_signal(signal.SIGTERM)
        for instance in self.instances:
            try:
                instance.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(instance.process.pid, signal.SIGKILL)
                instance.process.wait(timeout=30)
        self.instances = []

    # requests -----------------------------------------------------------------------
    def call(self, request: Request, server: int = 0) -> Reply:
        instance = self.instances[server % len(self.instances)]
        connection = instance.connect()
        try:
            reply = _send(connection, request)
        finally:
            connection.close()
        reply.server = instance.index
        return reply

    def get(self, path: str, key: str, server: int = 0, **query: Any) -> Reply:
        query = {name: value for name, value in query.items() if value is not None}
        if query:
            path = f"{path}?{urlencode(query)}"
        return self.call(Request("GET", path, key), server)

    def ok(self, reply: Reply, status: int = 200) -> Any:
        assert reply.status == status, reply
        return reply.json

    def race(self, requests: Sequence[Request]) -> list[Reply]:
        """Send every request at once, round-robin over the instances; replies in order.

        One thread and one open connection per request; all wait at a barrier and
        fire together. A request that fails at the transport level fails the test.
        """
        count = len(requests)
        barrier = threading.Barrier(count)

        def fire(index: int) -> Reply:
            instance = self.instances[index % len(self.instances)]
            connection = instance.connect()
            try:
                barrier.wait(timeout=60)
                reply = _send(connection, requests[index])
            except BaseException:
                barrier.abort()
                raise
            finally:
                connection.close()
            reply.server = instance.index
            return reply

        with ThreadPoolExecutor(max_workers=count, thread_name_prefix="racer") as pool:
            futures = [pool.submit(fire, index) for index in range(count)]
            return [future.result() for future in futures]

    # reading back through the API ---------------------------------------------------
    def pages(self, path: str, key: str, page_size: int = 7, **query: Any) -> list[dict]:
        """Every row of a cursor-paginated list, walking `next` → `after` page by page,
        each page from the next instance in turn. A list that answers `next` on its last
        page too (`/revocations`) ends with an empty page that gives back its cursor."""
        rows: list[dict] = []
        after = None
        for server in range(100_000):
            page = self.ok(self.get(path, key, server=server, limit=page_size, after=after,
                                    **query))
            assert len(page["data"]) <= page_size, page
            rows.extend(page["data"])
            if page["next"] is None:
                return rows
            if not page["data"]:  # the end of a list that answers `next` on its last page too
                assert after is None or page["next"] == after, f"an empty page with a new cursor: {page}"
                return rows
            after = page["next"]
        raise AssertionError(f"{path}: the cursor never ended")

    def events(self, key: str, type_: str | None = None, page_size: int = 7) -> list[dict]:
        """Every event visible to `key`, paged with `after`: checked unique and in order."""
        events = self.pages("events", key, page_size=page_size, type=type_)
        ids = [event["id"] for event in events]
        assert len(ids) == len(set(ids)), f"duplicated events: {_dupes(ids)}"
        cursors = [event["cursor"] for event in events]  # opaque: resuming after one gives the next
        assert len(set(cursors)) == len(cursors), cursors
        for n in sorted({0, len(events) // 2, len(events) - 2} & set(range(len(events) - 1))):
            page = self.ok(self.get("events", key, limit=1, after=cursors[n], type=type_))
            assert [event["id"] for event in page["data"]] == [ids[n + 1]], (n, page)
        if type_ is not None:
            assert {event["type"] for event in events} <= {type_}, events
        return events

    def coupons_csv(self, campaign_id: str, key: str, server: int = 0) -> list[dict[str, str]]:
        reply = self.get(f"campaigns/{campaign_id}/coupons.csv", key, server=server)
        assert reply.status == 200, reply
        assert reply.headers.get("content-type", "").startswith("text/csv"), reply.headers
        return list(csv.DictReader(io.StringIO(reply.text)))


def _dupes(values: Sequence[Any]) -> list[Any]:
    return [value for value, n in Counter(values).items() if n > 1]


def tally(replies: Sequence[Reply]) -> Counter:
    """`Counter({(201, None): 20, (409, 'sold_out'): 40})`: what the crowd was told."""
    return Counter((reply.status, reply.code) for reply in replies)


def wait_until(condition: Callable[[], bool], what: str, deadline: float = 60) -> None:
    """Poll for something the service does eventually (not a timing assertion)."""
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting after {deadline} s for {what}")
        time.sleep(0.1)
