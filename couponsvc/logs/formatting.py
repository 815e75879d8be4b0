"""The two shapes of a log line: one JSON object (production), or text (a terminal).

Both carry the same fields: the time (UTC, milliseconds), the level, the logger, the
message, the process id (which gunicorn or RQ worker), the request id of the request (or of the request behind the job) that is
running (`couponsvc/request_id.py`), the trace and span ids while a trace is recorded,
and whatever the call gave in `extra=`; an exception's traceback as `exc`. Every string
goes through `redaction.redact` on its way out.
"""

from __future__ import annotations

import json
import logging
import time
from itertools import islice
from typing import Any

import orjson

from .. import request_id, tracing
from .redaction import redact

# What every LogRecord has: anything else on a record came from `extra=` (added after these,
# so only the record's attributes past them are looked at).
TRUSTED = "_couponsvc_nothing_to_mask"
_FIRST_EXTRA = len(logging.LogRecord("", 0, "", 0, "", (), None).__dict__)
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message", "asctime", "request_id"}


_last_second: tuple[int, str] = (-1, "")  # formatted once a second (lines come many a second)


def timestamp(created: float) -> str:
    """`2026-11-30T01:10:08.984+00:00`: UTC, milliseconds."""
    global _last_second
    second = int(created)
    cached = _last_second  # one tuple, swapped whole: threads never see half of one
    if cached[0] != second:
        cached = _last_second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{cached[1]}.{int((created - second) * 1000):03d}+00:00"


def fields(record: logging.LogRecord, formatter: logging.Formatter) -> dict[str, Any]:
    """The line's fields, in order, masked (unless the line says it holds nothing to mask:
    `extra={TRUSTED: True}`, as the access line, made of a route's template, a status, a
    duration and an address, does)."""
    values = record.__dict__
    mask = (lambda text: text) if values.get(TRUSTED) else redact
    entry: dict[str, Any] = {
        "ts": timestamp(record.created),
        "level": record.levelname,
        "logger": record.name,
        "msg": mask(record.getMessage()),
        "pid": record.process,
    }
    rid = values.get("request_id") or request_id.current()
    if rid is not None:
        entry["request_id"] = rid
    ids = tracing.current_ids()
    if ids is not None:
        entry["trace_id"], entry["span_id"] = ids
    for name, value in islice(values.items(), _FIRST_EXTRA, None):
        if name not in _STANDARD and name[0] != "_":
            entry[name] = mask(value) if value.__class__ is str else value
    if record.exc_info:
        entry["exc"] = redact(formatter.formatException(record.exc_info))
    if record.stack_info:
        entry["stack"] = redact(formatter.formatStack(record.stack_info))
    return entry


_ENCODER = json.JSONEncoder(ensure_ascii=False, default=str)  # made once: dumps() makes one a call


class JsonFormatter(logging.Formatter):
    """One JSON object a line (non-ASCII kept as is: messages may be Chinese), written by
    orjson: the standard library's encoder cost each access line 30% of its instructions,
    3% of a redeem's in the app (docs/benchmarks.md). What orjson will not write (an
    integer past 64 bits, a string holding a lone surrogate) goes to the standard
    library's encoder instead, so a line is never lost to its encoding."""

    def format(self, record: logging.LogRecord) -> str:
        entry = fields(record, self)
        try:
            return orjson.dumps(entry, default=str).decode()
        except TypeError:  # orjson.JSONEncodeError
            return _ENCODER.encode(entry)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger message key=value …`, for a person at a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        entry = fields(record, self)
        entry.pop("pid")
        head = f"{entry.pop('ts')} {entry.pop('level')} {entry.pop('logger')} {entry.pop('msg')}"
        tail = entry.pop("exc", None)
        line = " ".join([head, *(f"{name}={value}" for name, value in entry.items())])
        return f"{line}\n{tail}" if tail else line


FORMATTERS = {"json": JsonFormatter, "text": TextFormatter}
