"""Every metric the processes count, declared once.

Under gunicorn (and `couponsvc worker --processes N`) each process writes its counts to
files of the multiprocess directory, summed at scrape time (`multiprocess.py`); without
it they live in this process. Figures of the whole deployment (delivery lag, queues) are
not counted here but read when scraped (`cluster.py`).
"""

from __future__ import annotations

import prometheus_client
from prometheus_client import Counter, Histogram

prometheus_client.disable_created_metrics()  # no `_created` series beside each counter

REDEMPTIONS = Counter(
    "couponsvc_redemptions", "Redeem decisions, by outcome: redeemed, or the refusal's code",
    ["outcome"])
REDEEM_SECONDS = Histogram(
    "couponsvc_redeem_seconds",
    "Time the redeem took to decide (the scan's check, the statement, a refusal's reason)",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0))
ORDERS = Counter(
    "couponsvc_orders", "Orders placed, by outcome: placed, or the refusal's code", ["outcome"])
DELIVERIES = Counter(
    "couponsvc_deliveries",
    "Delivery attempts, by adapter and result: succeeded, retry, dead, disabled (410 Gone)",
    ["adapter", "status"])
LOOKUPS_RATE_LIMITED = Counter(
    "couponsvc_lookups_rate_limited",
    "Coupon look-ups refused 429 by the failed-look-up budget, by the budget spent: key, address",
    ["kind"])
JOBS = Counter(
    "couponsvc_jobs", "Background jobs run, by task and outcome: succeeded, failed",
    ["task", "outcome"])
JOB_SECONDS = Histogram(
    "couponsvc_job_seconds", "Time a background job ran, by task", ["task"],
    buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0))
HTTP_REQUESTS = Counter(
    "couponsvc_http_requests", "Requests answered, by method, route template and status",
    ["method", "route", "status"])
