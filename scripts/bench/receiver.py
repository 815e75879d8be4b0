"""The ERP of `scripts/bench_delivery.py`: a loopback HTTP/1.1 keep-alive server on asyncio.

Every POST is answered at once (204, or 200 with `--status 200`) and recorded: arrival
time, `webhook-id`, raw body and head (parsed only when asked). GET `/_stats` answers
`{"count": N}`, `/_records?from=K` the records from index K as [received_at, webhook_id,
redemption_id, redeemed_at, body_bytes], `/_sample` the last delivery's headers and body.
On SIGTERM or SIGINT it writes every record to `--log` (JSON lines) and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from urllib.parse import parse_qs, urlsplit

RECORDS: list[tuple[float, str, bytes, bytes]] = []  # received_at, webhook-id, body, head


def parse_record(received_at: float, webhook_id: str, body: bytes, _head: bytes = b"") -> list:
    try:
        redemption = (json.loads(body).get("data") or {}).get("redemption") or {}
    except (ValueError, AttributeError):
        redemption = {}
    return [received_at, webhook_id, redemption.get("id"), redemption.get("redeemed_at"), len(body)]


def answer(status: bytes, body: bytes = b"", content_type: bytes = b"application/json") -> bytes:
    head = b"HTTP/1.1 " + status + b"\r\nServer: bench-receiver\r\n"
    if not status.startswith(b"204"):
        head += b"Content-Type: %s\r\nContent-Length: %d\r\n" % (content_type, len(body))
    return head + b"\r\n" + body


def control(target: str) -> bytes:
    url = urlsplit(target)
    if url.path == "/_stats":
        data = {"count": len(RECORDS)}
    elif url.path == "/_records":
        start = int((parse_qs(url.query).get("from") or ["0"])[0])
        data = [parse_record(*record) for record in RECORDS[start:]]
    elif url.path == "/_sample":
        data = {}
        for _at, webhook_id, body, head in reversed(RECORDS):
            if not webhook_id.startswith("ceiling"):
                lines = [line.partition(b":") for line in head.split(b"\r\n")[1:] if line]
                data = {"headers": {n.strip().decode(): v.strip().decode(errors="replace")
                                    for n, _, v in lines}, "body": body.decode(errors="replace")}
                break
    else:
        return answer(b"404 Not Found", b"{}")
    return answer(b"200 OK", json.dumps(data).encode())


async def serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                           ok: bytes) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            method, target, _version = lines[0].split(b" ", 2)
            headers = {n.strip().lower(): v.strip()
                       for n, _, v in (line.partition(b":") for line in lines[1:] if line)}
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
    except (ConnectionError, asyncio.IncompleteReadError, ValueError):
        pass
    finally:
        writer.close()


async def main(args: argparse.Namespace) -> None:
    ok = answer(b"200 OK", b"ok", b"text/plain") if args.status == 200 else answer(b"204 No Content")
    server = await asyncio.start_server(lambda r, w: serve_connection(r, w, ok), args.host,
                                        args.port, backlog=512)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    print(f"receiver listening on {args.host}:{args.port}", flush=True)
    async with server:
        await stop.wait()
    if args.log:
        with open(args.log, "w") as out:
            out.writelines(json.dumps(parse_record(*record)) + "\n" for record in RECORDS)
    print(f"receiver stopped after {len(RECORDS)} POSTs", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--status", type=int, choices=(200, 204), default=204)
    parser.add_argument("--log", default=None, help="write the records here (JSON lines) on exit")
    asyncio.run(main(parser.parse_args()))
