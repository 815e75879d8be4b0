"""`couponsvc worker` with a chosen RQ worker class, for `scripts/bench_delivery.py` only.

`workers/run.py` hard-codes RQ's SimpleWorker (jobs run in the worker process). To
measure that choice against RQ's default `Worker` (a forked work horse per job: now
per drain job, which sends a whole batch loop, and per periodic job) this runs the
same thing as `run_worker`: the app, its context pushed as `couponsvc worker` pushes
it, the periodic ticker (whose relay sweep also wakes retries: there is no RQ
scheduler), one RQ worker on `couponsvc.tasks.QUEUES`; only the class differs, and
this one does not start RQ's loop again when it ends (`run_worker` does).

    .venv/bin/python scripts/bench/rq_worker.py --class fork     # rq.Worker
    .venv/bin/python scripts/bench/rq_worker.py --class simple   # rq.SimpleWorker

Environment: as `couponsvc worker` (DATABASE_URL, REDIS_URL, SECRET_KEY, ...).
"""

from __future__ import annotations

import argparse
import sys

from rq import Queue, SimpleWorker, Worker

from couponsvc import create_app
from couponsvc.jobs import runner
from couponsvc.tasks import QUEUES
from workers.periodic import Ticker, schedule

CLASSES = {"simple": SimpleWorker, "fork": Worker}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--class", dest="worker_class", choices=sorted(CLASSES), required=True)
    parser.add_argument("--burst", action="store_true")
    args = parser.parse_args()
    app = create_app()
    with app.app_context():
        jobs = runner(app)
        if jobs.in_process:
            print("REDIS_URL is not set", file=sys.stderr)
            return 2
        connection = jobs.redis()
        ticker = Ticker(schedule(app.config), jobs.enqueue)
        if not args.burst:
            ticker.start()
        worker = CLASSES[args.worker_class](
            [Queue(name, connection=connection) for name in QUEUES], connection=connection)
        try:
            worker.work(burst=args.burst)
        finally:
            ticker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
