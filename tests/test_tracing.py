"""OpenTelemetry traces, to a local OTLP/HTTP receiver: a redeem's trace holds its Flask
span and its SQL, and continues, through the RQ job's meta, in the worker that runs the
job it queued, down to the delivery's HTTP call (whose `traceparent` the receiver gets).

Real processes: gunicorn with couponsvc's config (tracing made after the fork) and a real
`couponsvc worker --burst`, both sending OTLP/HTTP protobuf to a server in this test,
decoded with opentelemetry-proto. The test process itself records nothing.
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import subprocess
import sys
import threading
import zlib
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan

from couponsvc import tracing
from tests import conftest
from tests.deliveries.processes import COUPONSVC, stop, worker_environment
from tests.factories import Shop
from tests.integrations.receiver import Receiver
from tests.racing import GUNICORN, REPO, free_port, wait_until

pytestmark = pytest.mark.config(ALLOW_PRIVATE_WEBHOOK_TARGETS=True)


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict


class OtlpReceiver:
    """POST /v1/traces with an ExportTraceServiceRequest (protobuf): every span kept."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the standard library's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                receiver.add(ExportTraceServiceRequest.FromString(body), self.path)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.paths: set[str] = set()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def add(self, request: ExportTraceServiceRequest, path: str) -> None:
        found = []
        for resource_spans in request.resource_spans:
            resource = {kv.key: _value(kv.value) for kv in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    found.append(Span(
                        resource.get("service.name", ""), span.name,
                        ProtoSpan.SpanKind.Name(span.kind), span.trace_id.hex(), span.span_id.hex(),
                        span.parent_span_id.hex(), {kv.key: _value(kv.value) for kv in span.attributes}))
        with self.lock:
            self.paths.add(path)
            self.spans.extend(found)

    def of_trace(self, trace_id: str) -> list[Span]:
        with self.lock:
            return [span for span in self.spans if span.trace_id == trace_id]

    def __enter__(self) -> OtlpReceiver:
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def _value(any_value):
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


def post(port: int, path: str, body: dict, headers: dict) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("POST", path, body=json.dumps(body).encode(),
                           headers={"Content-Type": "application/json", **headers})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


def ready(port: int) -> bool:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request("GET", "/readyz")
            return connection.getresponse().status == 200
        finally:
            connection.close()
    except OSError:
        return False


def test_off_without_an_endpoint(client, tmp_path):
    assert not tracing.configured() and not tracing.enabled()
    assert tracing.carrier() == {} and tracing.current_ids() is None
    # a process that serves requests without the variable imports no instrumentation, no
    # exporter, no tracer (redis-py imports OpenTelemetry's metrics API on its own when it
    # is installed: that is not tracing)
    script = ("import sys\nfrom couponsvc import create_app\n"
              "app = create_app({'TESTING': True})\n"
              "assert app.test_client().get('/healthz').status_code == 200\n"
              "print(sorted(name for name in sys.modules if name.startswith(("
              "'opentelemetry.instrumentation', 'opentelemetry.exporter', 'opentelemetry.sdk.trace',"
              "'opentelemetry.propagate'))))\n")
    env = {name: value for name, value in os.environ.items() if not name.startswith("OTEL_")}
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True,
                          env={**env, "COUPONSVC_INSTANCE_PATH": str(tmp_path)}, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]", done.stdout


def test_a_redeem_is_traced_from_the_request_to_the_delivery(client, app, instance_path, tmp_path):
    with OtlpReceiver() as collector, Receiver() as hook:
        shop = Shop(client)
        client.ok(client.post(f"merchants/{shop.merchant['id']}/integrations", {
            "adapter": "webhook", "config": {"url": hook.url + "/hook"},
            "events": ["coupon.redeemed"]}, key=shop.manager), 201)
        code = shop.coupon()["code"]
        otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100"}
        port = free_port()
        web_env = worker_environment(app, instance_path, conftest.REDIS_URL,
                                     OTEL_SERVICE_NAME="couponsvc-web", **otel)
        with open(tmp_path / "gunicorn.log", "wb") as log:
            web = subprocess.Popen(
                [GUNICORN, "-c", "python:couponsvc.gunicorn_conf", "-w", "1", "--threads", "2",
                 "-b", f"127.0.0.1:{port}", "--graceful-timeout", "2", "--no-control-socket"],
                cwd=REPO, env=web_env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_until(lambda: web.poll() is None and ready(port), "gunicorn to answer", 60)
            status, body = post(port, "/api/v1/redemptions", {"code": code},
                                {"Authorization": f"Bearer {shop.scanner}",
                                 "X-Request-ID": "traced-redeem-0001"})
            assert status == 201, body
            wait_until(lambda: any(span.kind == "SPAN_KIND_SERVER" and span.name.endswith(
                "/api/v1/redemptions") for span in collector.spans), "the redeem's span", 30)
        finally:
            stop(web)
        [server] = [span for span in collector.spans if span.kind == "SPAN_KIND_SERVER"
                    and span.name == "POST /api/v1/redemptions"]
        assert server.service == "couponsvc-web" and server.parent_id == ""
        assert server.attributes["couponsvc.request_id"] == "traced-redeem-0001"
        web_trace = collector.of_trace(server.trace_id)
        sql = [span for span in web_trace if "db.system" in span.attributes
               or "db.system.name" in span.attributes]
        assert sql, [(span.name, span.attributes) for span in web_trace]
        statements = " ".join(str(span.attributes.get("db.statement", "")) for span in sql)
        assert "UPDATE coupons" in statements and "INSERT INTO redemptions" in statements, statements
        assert {span.service for span in web_trace} == {"couponsvc-web"}

        worker_env = worker_environment(app, instance_path, conftest.REDIS_URL,
                                        OTEL_SERVICE_NAME="couponsvc-worker", **otel)
        with open(tmp_path / "worker.log", "wb") as log:
            worker = subprocess.Popen([COUPONSVC, "worker", "--burst"], cwd=REPO, env=worker_env,
                                      stdout=log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            assert worker.wait(timeout=120) == 0, (tmp_path / "worker.log").read_text()[-3000:]
        finally:
            stop(worker)
        assert len(hook.requests) == 1

    trace = collector.of_trace(server.trace_id)
    [job] = [span for span in trace if span.name == "job drain"]
    assert job.service == "couponsvc-worker" and job.kind == "SPAN_KIND_CONSUMER"
    assert job.attributes["couponsvc.request_id"] == "traced-redeem-0001"
    assert job.parent_id in {span.span_id for span in trace if span.service == "couponsvc-web"}
    calls = [span for span in trace if span.service == "couponsvc-worker"
             and span.kind == "SPAN_KIND_CLIENT" and span.name.startswith("POST")]
    assert calls, [(span.service, span.name, span.kind) for span in trace]
    # the receiver was told the trace too (W3C traceparent: 00-<trace id>-<span id>-01)
    assert hook.requests[0].headers["traceparent"].split("-")[1] == server.trace_id
    assert collector.paths == {"/v1/traces"}
