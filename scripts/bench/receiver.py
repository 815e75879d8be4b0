"""A fast loopback webhook receiver for `scripts/bench_delivery.py`: the ERP's side.

A minimal HTTP/1.1 keep-alive server on asyncio. Every POST is answered at once
(204 by default, `--status 200` for a 200 with a 2-byte body) and recorded: the time
the whole request had arrived (`time.time()`), its `webhook-id` and its body, kept
raw and parsed only when asked for, so a request costs the receiver as little as
it can.

A side channel on the same port (GET requests, never recorded):

    GET /_stats              {"count": N}: POSTs recorded so far
    GET /_records?from=K     the records from index K: [[received_at, webhook_id,
                             redemption_id, redeemed_at, body_bytes], ...]
    GET /_sample             the last recorded POST's headers and body (to copy its size
                             and headers for the keep-alive ceiling)

On SIGTERM or SIGINT it writes every record as JSON lines to `--log` (when given)
and exits.

    .venv/bin/python scripts/bench/receiver.py --port 8099 --log /tmp/received.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from urllib.parse import parse_qs, urlsplit

RECORDS: list[tuple[float, str, bytes, bytes]] = []  # received_at, webhook-id, body, head


def parse_record(received_at: float, webhook_id: str, body: bytes, _head: bytes = b"") -> list:
    redemption_id = redeemed_at = None
    try:
        data = json.loads(body).get("data") or {}
        redemption = data.get("redemption") or {}
        redemption_id, redeemed_at = redemption.get("id"), redemption.get("redeemed_at")
    except (ValueError, AttributeError):
        pass
    return [received_at, webhook_id, redemption_id, redeemed_at, len(body)]


def answer(status: bytes, body: bytes = b"", content_type: bytes = b"application/json") -> bytes:
    head = b"HTTP/1.1 " + status + b"\r\nServer: bench-receiver\r\n"
    if not status.startswith(b"204"):
        head += (b"Content-Type: " + content_type + b"\r\nContent-Length: "
                 + str(len(body)).encode() + b"\r\n")
    return head + b"\r\n" + body


def sample() -> dict[str, object]:
    for _received_at, webhook_id, body, head in reversed(RECORDS):
        if not webhook_id.startswith("ceiling"):
            headers = {}
            for line in head.split(b"\r\n")[1:]:
                if line:
                    name, _, value = line.partition(b":")
                    headers[name.strip().decode()] = value.strip().decode(errors="replace")
            return {"headers": headers, "body": body.decode(errors="replace")}
    return {}


def control(target: str) -> bytes:
    url = urlsplit(target)
    if url.path == "/_stats":
        return answer(b"200 OK", json.dumps({"count": len(RECORDS)}).encode())
    if url.path == "/_records":
        start = int((parse_qs(url.query).get("from") or ["0"])[0])
        rows = [parse_record(*record) for record in RECORDS[start:]]
        return answer(b"200 OK", json.dumps(rows).encode())
    if url.path == "/_sample":
        return answer(b"200 OK", json.dumps(sample()).encode())
    return answer(b"404 Not Found", b"{}")


async def serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                           ok: bytes) -> None:
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            lines = head.split(b"\r\n")
            try:
                method, target, _version = lines[0].split(b" ", 2)
            except ValueError:
                writer.write(answer(b"400 Bad Request", b"{}"))
                return
            headers: dict[bytes, bytes] = {}
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(b":")
                    headers[name.strip().lower()] = value.strip()
            if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
                writer.write(answer(b"411 Length Required", b"{}"))
                return
            length = int(headers.get(b"content-length") or 0)
            body = await reader.readexactly(length) if length else b""
            received_at = time.time()
            if method == b"POST":
                webhook_id = headers.get(b"webhook-id", b"").decode(errors="replace")
                RECORDS.append((received_at, webhook_id, body, head))
                writer.write(ok)
            else:
                writer.write(control(target.decode(errors="replace")))
            if headers.get(b"connection", b"").lower() == b"close":
                await writer.drain()
                return
            if writer.transport.get_write_buffer_size() > 65536:
                await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


def dump(path: str | None) -> None:
    if not path:
        return
    with open(path, "w") as out:
        for record in RECORDS:
            out.write(json.dumps(parse_record(*record)) + "\n")


async def main(args: argparse.Namespace) -> None:
    ok = answer(b"200 OK", b"ok", b"text/plain") if args.status == 200 else answer(b"204 No Content")
    server = await asyncio.start_server(lambda r, w: serve_connection(r, w, ok), args.host,
                                        args.port, backlog=512)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"receiver listening on {args.host}:{args.port}", flush=True)
    async with server:
        await stop.wait()
    dump(args.log)
    print(f"receiver stopped after {len(RECORDS)} POSTs", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--status", type=int, choices=(200, 204), default=204)
    parser.add_argument("--log", default=None, help="write the records here (JSON lines) on exit")
    asyncio.run(main(parser.parse_args()))
    sys.exit(0)
