"""gunicorn's settings for couponsvc: `gunicorn -c python:couponsvc.gunicorn_conf`.

    gunicorn -c python:couponsvc.gunicorn_conf --bind 0.0.0.0:8000 --workers 4 --threads 4

(the application, `couponsvc:create_app()`, is named here; workers, threads and the
address come from the command line or `WEB_CONCURRENCY`, as gunicorn reads them).

What it adds to gunicorn's defaults:
- Metrics across workers (docs/operations.md): every worker counts into files of one
  directory, `PROMETHEUS_MULTIPROC_DIR` (a new temporary one when unset, removed at
  exit), named before any worker imports `prometheus_client` and emptied when the master
  starts; a worker that exits is marked dead (`child_exit`). A scrape of /metrics, answered
  by any worker, adds up all of them.
- Traces: each worker makes its tracer provider after the fork (`post_fork`), never the
  master; off unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set (`couponsvc/tracing.py`).
- Garbage collection: once a worker has loaded the app, the app's objects are frozen
  (`gc.freeze()`, `post_worker_init`), so that a full collection does not walk them.
- Logs: gunicorn's own lines in the app's format (`COUPONSVC_LOG_FORMAT`, JSON by
  default); no gunicorn access log, the app writes its own (route template, request id).
  gunicorn takes any `logconfig_dict` to mean an access log is wanted and builds one
  for every request (15 µs of CPU, about a hundredth of a redeem's) even when it
  has nowhere to go: `logger_class` tells it there is none. The app's lines below WARNING
  are written every 100 ms (`COUPONSVC_LOG_WRITE_MS`, unless set), not one write each:
  a write lets go of the GIL, which with gunicorn's threads cost a thread switch a line.
"""

from __future__ import annotations

import gc
import os
import shutil

from gunicorn.glogging import Logger

from couponsvc.metrics import multiprocess
from couponsvc.tracing import MASTER_PID_VARIABLE

wsgi_app = "couponsvc:create_app()"
accesslog = None
os.environ.setdefault("COUPONSVC_LOG_WRITE_MS", "100")  # read by each worker's create_app()


class NoAccessLogLogger(Logger):
    """gunicorn's logger without its access log: the app writes the access line."""

    access_log_enabled = False  # read by gunicorn's workers before they time a request for it

    def access(self, resp, req, environ, request_time) -> None:
        return None


logger_class = NoAccessLogLogger

# The directory is named at once: a worker (or the master, with --preload) imports
# prometheus_client only after this, and its counters then write there.
_made_here = multiprocess.directory() is None
_directory = multiprocess.prepare()
os.environ[MASTER_PID_VARIABLE] = str(os.getpid())

_log_format = (os.environ.get("COUPONSVC_LOG_FORMAT") or "json").strip().lower()
if _log_format == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "couponsvc.logs.formatting.JsonFormatter"}},
        "handlers": {
            "error_console": {"class": "logging.StreamHandler", "formatter": "json",
                              "stream": "ext://sys.stderr"},
        },
        "root": {"level": "WARNING", "handlers": []},  # the app puts its handler there
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["error_console"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": False},
        },
    }


def on_starting(server) -> None:
    """The master, before any worker: an earlier run's counts must not be summed again."""
    multiprocess.wipe(_directory)


def post_fork(server, worker) -> None:
    from couponsvc import tracing

    tracing.start()


def post_worker_init(worker) -> None:
    """The app is loaded: its objects (some 180,000) are set aside from the cyclic garbage
    collector, which otherwise walks them all in every full collection, holding the GIL
    for all the worker's threads (150 ms on a slow 2-core host; 5 ms after this)."""
    gc.freeze()


def child_exit(server, worker) -> None:
    multiprocess.mark_dead(worker.pid, _directory)


def on_exit(server) -> None:
    if _made_here:
        shutil.rmtree(_directory, ignore_errors=True)
