"""One handler on the root logger, writing to standard error, set up by `create_app`.

Every process logs the same way: the web app (gunicorn's own lines too, through
`couponsvc/gunicorn_conf.py`), `couponsvc worker` (RQ's lines included) and the
in-process job threads. Setting up again (another app in the same process, as tests
do) changes the one handler's format, never adds a second.

Under gunicorn, lines below WARNING are written together (`COUPONSVC_LOG_WRITE_MS`,
100 ms in `gunicorn_conf.py`; elsewhere each line at once): a write to standard error
lets go of the GIL, and with gunicorn's threads each access line then cost a thread
switch (docs/benchmarks.md, "The redeem's thread switches").
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import weakref

from .formatting import FORMATTERS

OWN_LOGGERS = ("couponsvc", "workers", "integrations")


class StandardErrorHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is when the line is written (a test's capture).

    With `write_ms` > 0, a line below WARNING waits, and the lines waiting are written in
    one write every `write_ms` by a thread of the handler's. A WARNING or worse is
    written at once, after the lines waiting before it, so nothing is reordered;
    `flush()` writes what waits (`logging.shutdown` does at exit). A forked child starts
    with nothing waiting: its parent writes its own lines. What waits when a process is
    killed outright (SIGKILL) is lost: at most `write_ms` of lines below WARNING.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.write_ms = 0
        self._waiting: list[str] = []
        self._writer: object | None = None  # the running writer's token
        _HANDLERS.add(self)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass

    def emit(self, record: logging.LogRecord) -> None:  # called holding self.lock
        if self.write_ms <= 0 or record.levelno >= logging.WARNING:
            self._write_waiting()
            super().emit(record)
            return
        try:
            self._waiting.append(self.format(record) + self.terminator)
        except Exception:
            self.handleError(record)
            return
        if self._writer is None:
            self._start_writer()

    def write_every(self, write_ms: int) -> None:
        """Write lines below WARNING every `write_ms` from now on (0: each at once)."""
        with self.lock:
            self._write_waiting()
            self.write_ms = write_ms
            self._writer = None  # a writer running stops; the next line starts one

    def flush(self) -> None:
        with self.lock:
            self._write_waiting()
            super().flush()

    def _write_waiting(self) -> None:
        if self._waiting:
            text = "".join(self._waiting)
            self._waiting.clear()
            self.stream.write(text)

    def _start_writer(self) -> None:
        self._writer = token = object()
        threading.Thread(target=self._write_while, args=(token, self.write_ms / 1000), daemon=True,
                         name="couponsvc-log-writer").start()

    def _write_while(self, token: object, interval: float) -> None:
        while self._writer is token:
            time.sleep(interval)
            self.flush()

    def _forked(self) -> None:  # the parent's writer thread did not come along
        self._waiting = []
        self._writer = None


_HANDLERS: weakref.WeakSet[StandardErrorHandler] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for handler in list(_HANDLERS):
        handler._forked()


os.register_at_fork(after_in_child=_after_fork_in_child)


def configure(log_format: str, level: str, write_ms: int = 0) -> logging.Handler:
    """Log `couponsvc`, `workers` and `integrations` from `level` up, everything else
    from WARNING up, as `log_format` (json | text), lines below WARNING written every
    `write_ms` (0: at once); the handler.

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
    handler.write_every(write_ms)
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(level)
    return handler
