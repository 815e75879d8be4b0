"""Running an RQ worker inside the application context."""

from __future__ import annotations

from flask import Flask
from rq import Queue, Worker

from couponsvc.jobs import runner

from . import queues


def run_worker(app: Flask, *, burst: bool = False) -> int:
    connection = runner(app).redis()
    worker = Worker([Queue(name, connection=connection) for name in queues.ALL],
                    connection=connection)
    worked = worker.work(burst=burst, with_scheduler=True)
    return 0 if worked or burst else 1
