"""Tasks: declared once in `couponsvc.tasks` (name, queue, function), implemented in
`workers/`, and enqueued only through their declaration."""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import subprocess
import sys
import threading
import tokenize
from pathlib import Path

import pytest
from flask import Flask

import workers
from couponsvc import tasks
from couponsvc.jobs import JobRunner, resolve

REPO = Path(__file__).resolve().parent.parent


def test_every_declared_task_resolves_to_the_function_that_implements_it():
    assert len({t.name for t in tasks.TASKS}) == len({t.function for t in tasks.TASKS}) == len(tasks.TASKS)
    for task in tasks.TASKS:
        function = resolve(task.function)
        assert function.task is task, task  # `@job(task)` on the very function the task names
        assert task.queue in tasks.QUEUES


def test_every_job_of_workers_is_a_declared_task():
    found = []
    for module in pkgutil.iter_modules(workers.__path__):
        if module.name == "run":
            continue  # the worker process itself, not jobs
        loaded = importlib.import_module(f"workers.{module.name}")
        found += [obj.task for obj in vars(loaded).values() if inspect.isfunction(obj) and hasattr(obj, "task")]
    assert sorted(t.name for t in found) == sorted(t.name for t in tasks.TASKS)


def test_a_task_names_a_known_queue():
    with pytest.raises(ValueError, match="unknown queue"):
        tasks.Task("x", "bulky", "workers.bulk.issue_bulk")


def test_a_job_is_enqueued_through_its_declaration_only():
    runner = JobRunner(Flask("tasks-test"))  # in-process: nothing would stop a string
    with pytest.raises(TypeError):
        runner.enqueue("workers.bulk.issue_bulk", "job_1")


def _named_by_string(path: Path) -> list[str]:
    """String literals that are a `workers.` path, and `enqueue(` given a string. Tokens,
    not grep: docstrings and comments may mention such paths."""
    with path.open("rb") as source:
        tokens = [t for t in tokenize.tokenize(source.readline)
                  if t.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE)]
    found = []
    for name, paren, token in zip(tokens, tokens[1:], tokens[2:], strict=False):
        if token.type != tokenize.STRING:
            continue
        literal = token.string.strip("'\"")
        if literal.startswith("workers.") and literal.count(".") >= 2 and " " not in literal:
            found.append(f"{path.name}:{token.start[0]} {token.string}")
        elif name.string == "enqueue" and paren.string == "(":
            found.append(f"{path.name}:{token.start[0]} enqueue({token.string}")
    return found


def test_no_code_names_a_job_by_a_dotted_string():
    offenders = [found for root in ("couponsvc", "workers", "scripts")
                 for path in sorted((REPO / root).rglob("*.py")) if path != REPO / "couponsvc" / "tasks.py"
                 for found in _named_by_string(path)]
    assert offenders == []


def test_the_scan_sees_a_job_named_by_a_string(tmp_path):
    planted = tmp_path / "planted.py"
    planted.write_text('"""Queues `workers.bulk.issue_bulk`."""\n'
                       'JOB = "workers.bulk.issue_bulk"  # workers.bulk.issue_bulk\n'
                       'enqueue(\n    "job_1")\n')
    assert _named_by_string(planted) == ['planted.py:2 "workers.bulk.issue_bulk"', 'planted.py:4 enqueue("job_1"']


def test_the_web_app_imports_no_worker_module(tmp_path):
    code = ("import sys; from couponsvc import create_app; "
            f"app = create_app({{'SQLALCHEMY_DATABASE_URI': 'sqlite:///{tmp_path}/t.db', 'TESTING': True}}); "
            "app.test_client().get('/health'); "
            "print(sorted(m for m in sys.modules if m == 'workers' or m.startswith('workers.')))")
    env = {**os.environ, "COUPONSVC_INSTANCE_PATH": str(tmp_path)}
    env.pop("REDIS_URL", None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=REPO, env=env)
    assert out.stdout.split("\n")[-2] == "[]"


_RELEASE = threading.Event()


def _wait_for_release() -> None:
    assert _RELEASE.wait(60)


def test_in_process_a_job_id_is_unique_while_the_job_waits_or_runs():
    """As with RQ's unique ids: the bulk sweep, every second, does not pile up copies of
    a job that is still waiting for a thread of the serving process."""
    runner = JobRunner(Flask("tasks-test"))
    probe = tasks.Task("probe", tasks.DEFAULT, f"{__name__}._wait_for_release")
    _RELEASE.clear()
    try:
        assert runner.enqueue(probe, job_id="bulk-job_1-0")
        assert not runner.enqueue(probe, job_id="bulk-job_1-0")
        assert runner.enqueue(probe, job_id="bulk-job_1-1")  # another claim's run is another job
    finally:
        _RELEASE.set()
        runner.wait_idle()
    assert runner.enqueue(probe, job_id="bulk-job_1-0")  # gone from the runner: may come again
    runner.wait_idle()
