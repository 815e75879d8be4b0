"""The service's public base URL: where every absolute link a client gets starts.

`COUPONSVC_PUBLIC_URL`, never the request's `Host` (which the client chooses). With no
PUBLIC_URL (allowed on SQLite only, the embedded default) it is `http://127.0.0.1:$PORT`
(PORT defaults to 5000), where `./scripts/serve` listens. Needs an app context.
"""

from __future__ import annotations

from flask import current_app


def base_url() -> str:
    return current_app.config["PUBLIC_URL"] or f"http://127.0.0.1:{current_app.config['PORT']}"
