"""Prometheus metrics, with `prometheus_client` (multiprocess under gunicorn).

- `catalog.py`: every metric the processes count, declared once.
- `switch.py`: counting on or off (`COUPONSVC_METRICS`).
- `outcomes.py`: `@counted`, which counts a domain decision where it is made (the
  redeem's outcome and time, an order's outcome).
- `cluster.py`: figures of the whole deployment read at scrape time (delivery lag, the
  outbox's unnumbered events, RQ's queues).
- `multiprocess.py`: the directory where gunicorn's (or `couponsvc worker
  --processes N`'s) processes write their counts, and the registry that adds them up.
- `endpoint.py`: `/metrics` for the addresses of `COUPONSVC_METRICS_ALLOW`, and the count
  of requests by route and status.
- `listener.py`: the worker's own `/metrics` (`COUPONSVC_WORKER_METRICS_LISTEN`).

Nothing is imported here: `couponsvc/gunicorn_conf.py` must name the multiprocess
directory before `prometheus_client` is first imported. docs/operations.md lists the metrics.
"""
