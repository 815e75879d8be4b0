"""Lines below WARNING written together (`COUPONSVC_LOG_WRITE_MS`, logs/setup.py): in
order, a warning at once, nothing lost at a flush, nothing written twice after a fork."""

from __future__ import annotations

import logging
import os
import sys
import time

import pytest

from couponsvc.logs.setup import StandardErrorHandler

LONG = 5000  # ms: the writer thread never writes within a test that uses it


class Stream:
    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, text: str) -> None:
        self.writes.append(text)

    def flush(self) -> None:
        pass

    @property
    def text(self) -> str:
        return "".join(self.writes)


@pytest.fixture
def stream(monkeypatch):
    """Standard error, as the handler finds it (set in the test: pytest's capture sets
    sys.stderr again after the fixtures)."""
    stream = Stream()

    def redirect():
        monkeypatch.setattr(sys, "stderr", stream)
        return stream

    return redirect


@pytest.fixture
def logger():
    handler = StandardErrorHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    log = logging.getLogger("tests.log_write_interval")
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.INFO)
    yield log
    handler.write_every(0)
    log.handlers[:] = []


def test_lines_wait_and_are_written_in_one_write(stream, logger):
    stream = stream()
    logger.handlers[0].write_every(LONG)
    for n in range(10):
        logger.info("line %d", n)
    assert stream.writes == []
    logger.handlers[0].flush()
    assert stream.writes == ["".join(f"INFO line {n}\n" for n in range(10))]


def test_a_warning_is_written_at_once_after_the_lines_before_it(stream, logger):
    stream = stream()
    logger.handlers[0].write_every(LONG)
    logger.info("first")
    logger.warning("second")
    assert stream.text == "INFO first\nWARNING second\n"


def test_the_writer_writes_within_the_interval(stream, logger):
    stream = stream()
    logger.handlers[0].write_every(20)
    logger.info("soon")
    deadline = time.monotonic() + 10
    while not stream.writes and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stream.text == "INFO soon\n"


def test_at_once_when_set_to_zero_and_what_waited_is_written_then(stream, logger):
    stream = stream()
    handler = logger.handlers[0]
    handler.write_every(LONG)
    logger.info("waited")
    handler.write_every(0)
    assert stream.text == "INFO waited\n"
    logger.info("at once")
    assert stream.writes[-1] == "INFO at once\n"


def test_a_forked_child_does_not_write_its_parents_waiting_lines(tmp_path, monkeypatch, logger):
    path = tmp_path / "stderr"
    with open(path, "w", buffering=1) as out:
        monkeypatch.setattr(sys, "stderr", out)
        handler = logger.handlers[0]
        handler.write_every(LONG)
        logger.info("the parent's")
        pid = os.fork()
        if pid == 0:
            try:
                logger.info("the child's")
                handler.flush()
                out.flush()
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        handler.flush()
    lines = path.read_text().splitlines()
    assert sorted(lines) == ["INFO the child's", "INFO the parent's"]

