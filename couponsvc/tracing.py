"""OpenTelemetry traces, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set; nothing at all otherwise.

Unset (the default), nothing of OpenTelemetry is imported and every function here
answers at once (`enabled()` is False). Set, `init_app` instruments:
- Flask (a server span per request, named by its route; not /healthz, /readyz, /metrics),
- SQL: on PostgreSQL psycopg (every cursor, SQLAlchemy's included, and the redeem's
  one statement, sent on a `RawCursor` or through psycopg's libpq layer, which the
  instrumentation's cursor factories do not see: `_trace_raw_cursors`), on SQLite
  SQLAlchemy's engine,
- requests (the deliveries' calls; the trace context goes out in `traceparent`),
- redis (RQ, the drain locks, the channel limits).
A job carries its request's trace context in its RQ meta (`carrier()`, by
`couponsvc/job_context.py`), and the worker continues that trace (`job_span`).

The tracer provider and its exporter thread (OTLP over HTTP/protobuf, batched, to
`$OTEL_EXPORTER_OTLP_ENDPOINT/v1/traces`) are made in the process that records: in each
gunicorn worker after the fork (`couponsvc/gunicorn_conf.py`'s `post_fork`, or lazily by
`create_app` in the worker, as without `--preload`), never in the gunicorn master. The
standard `OTEL_*` variables apply (`OTEL_SERVICE_NAME`, default `couponsvc`;
`OTEL_TRACES_SAMPLER`, `OTEL_EXPORTER_OTLP_HEADERS`, ...). docs/operations.md.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
MASTER_PID_VARIABLE = "COUPONSVC_GUNICORN_MASTER_PID"  # set by couponsvc/gunicorn_conf.py
NOT_TRACED = "healthz,readyz,metrics"

_started_in: int | None = None  # the pid whose tracer provider records
_instrumented = False


def configured() -> bool:
    """Is tracing asked for (an OTLP endpoint set)?"""
    return any(os.environ.get(name) for name in ENDPOINT_VARIABLES)


def enabled() -> bool:
    """Does this process record traces?"""
    return _started_in is not None and _started_in == os.getpid()


def init_app(app: Flask) -> None:
    """Instrument the app and the libraries; start recording unless this is a gunicorn
    master that will fork its workers (they start in `post_fork`)."""
    if not configured():
        return
    _instrument_libraries(app)
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    FlaskInstrumentor().instrument_app(app, excluded_urls=NOT_TRACED)
    if os.environ.get(MASTER_PID_VARIABLE) != str(os.getpid()):
        start()


def start() -> None:
    """Make this process's tracer provider and exporter (once per process)."""
    global _started_in
    if not configured() or enabled():
        return
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    attributes = {"service.name": os.environ.get("OTEL_SERVICE_NAME") or "couponsvc",
                  "process.pid": os.getpid()}
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _started_in = os.getpid()


def _instrument_libraries(app: Flask) -> None:
    global _instrumented
    if _instrumented:
        return
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    PsycopgInstrumentor().instrument()
    _trace_raw_cursors()
    RequestsInstrumentor().instrument()
    RedisInstrumentor().instrument()
    _instrumented = True
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        from .extensions import db

        with app.app_context():  # (declared for SQLAlchemy < 2.1; its events are the same in 2.1)
            SQLAlchemyInstrumentor().instrument(engine=db.engine, skip_dep_check=True)


def _trace_raw_cursors() -> None:
    """A span around each statement psycopg's instrumentation, working through the
    connection's cursor factory, does not see: a `RawCursor` made directly, and the
    redeem's statement run through psycopg's libpq layer (`redeem/prepared.py`). The
    statement's text is recorded, never its values."""
    import psycopg
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind

    from .redeem import prepared

    tracer = trace.get_tracer("couponsvc.sql")

    def span(query: str | bytes):
        text = query.decode() if isinstance(query, bytes) else str(query)
        return tracer.start_as_current_span(text.split(None, 1)[0] if text.strip() else "SQL",
                                            kind=SpanKind.CLIENT,
                                            attributes={"db.system": "postgresql", "db.statement": text})

    execute, first_row = psycopg.RawCursor.execute, prepared.first_row

    def traced_execute(cursor, query, *args, **kwargs):
        with span(query):
            return execute(cursor, query, *args, **kwargs)

    def traced_first_row(connection, name, query, *args, **kwargs):
        with span(query):
            return first_row(connection, name, query, *args, **kwargs)

    psycopg.RawCursor.execute = traced_execute
    prepared.first_row = traced_first_row


def current_ids() -> tuple[str, str] | None:
    """The current span's (trace id, span id) in hex, for a log line; None when none."""
    if not enabled():
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def annotate(**attributes: Any) -> None:
    """Set attributes (`couponsvc.<name>`) on the current span."""
    if not enabled():
        return
    from opentelemetry import trace

    span = trace.get_current_span()
    for name, value in attributes.items():
        span.set_attribute(f"couponsvc.{name}", value)


def carrier() -> dict[str, str]:
    """The current trace context as W3C headers (`traceparent`), to put in a job's meta."""
    if not enabled():
        return {}
    from opentelemetry.propagate import inject

    headers: dict[str, str] = {}
    inject(headers)
    return headers


@contextlib.contextmanager
def job_span(name: str, headers: dict[str, str], **attributes: Any) -> Iterator[None]:
    """A span for a job's run, continuing the trace of the request that queued it."""
    if not enabled():
        yield
        return
    from opentelemetry import trace
    from opentelemetry.propagate import extract
    from opentelemetry.trace import SpanKind

    tracer = trace.get_tracer("couponsvc.jobs")
    with tracer.start_as_current_span(name, context=extract(headers), kind=SpanKind.CONSUMER,
                                      attributes={f"couponsvc.{key}": value
                                                  for key, value in attributes.items()
                                                  if value is not None}):
        yield


def flush() -> None:
    """Send what is recorded now (a worker about to stop)."""
    if not enabled():
        return
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    if hasattr(provider, "force_flush"):
        provider.force_flush()
