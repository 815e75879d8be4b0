"""Counting on or off for this process (`COUPONSVC_METRICS`, on by default).

Off, the hooks of `outcomes.py`, the job runs and the deliveries count nothing and
`/metrics` is not served: the benchmark's comparison (scripts/bench_redeem.py
`--metrics off`) and a deployment that does not want them.
"""

from __future__ import annotations

_on = True


def counting() -> bool:
    return _on


def set_counting(on: bool) -> None:
    global _on
    _on = bool(on)
