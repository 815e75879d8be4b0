"""Logs: one JSON object a line (or plain text), naming the request behind each line.

- `formatting.py`: the JSON and text formatters; every line goes through `redaction.py`.
- `redaction.py`: what never reaches a log whole (coupon codes, API keys, secrets).
- `setup.py`: one handler on the root logger, on standard error, for the web app, the
  worker and gunicorn alike (`COUPONSVC_LOG_FORMAT`, `COUPONSVC_LOG_LEVEL`).
- `access.py`: the request id of each request, and its access line.

docs/operations.md lists the fields.
"""
