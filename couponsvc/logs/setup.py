"""One handler on the root logger, writing to standard error, set up by `create_app`.

Every process logs the same way: the web app (gunicorn's own lines too, through
`couponsvc/gunicorn_conf.py`), `couponsvc worker` (RQ's lines included) and the
in-process job threads. Setting up again (another app in the same process, as tests
do) changes the one handler's format, never adds a second.
"""

from __future__ import annotations

import logging
import sys

from .formatting import FORMATTERS

OWN_LOGGERS = ("couponsvc", "workers", "integrations")


class StandardErrorHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is when the line is written (a test's capture)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def configure(log_format: str, level: str) -> logging.Handler:
    """Log `couponsvc`, `workers` and `integrations` from `level` up, everything else
    from WARNING up, as `log_format` (json | text); the handler.

    A record does not look up what no line shows (the logging HOWTO's "Optimization"):
    the caller's file and line (a walk of the stack), the thread's and the process's
    names. An access line a request then costs a fraction of what it did."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, StandardErrorHandler)), None)
    if handler is None:
        handler = StandardErrorHandler()
        root.addHandler(handler)
    handler.setFormatter(FORMATTERS[log_format]())
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(level)
    return handler
