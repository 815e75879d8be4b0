"""Who is signed in to the admin, and what every admin view may rely on.

`@signed_in` loads the session from its cookie (`people.find_session`: ended, expired,
idle and disabled are all "not signed in", answered with a redirect to the sign-in page)
and sets `g.person` (the `AdminUser`), `g.principal` (their `Principal`, the one the
API's domain functions take), `g.admin_session` and `g.timezone` (a manager's merchant's
time zone, else Asia/Shanghai). `@operator_only` lets operators alone through (403 page).
`audit(...)` adds an audit entry for the signed-in person; the view commits.

CSRF: every unsafe request outside the JSON API (`/api/`, which authenticates with bearer
keys, never cookies) must carry the form's token (`csrf_field()` in `admin/_macros.html`,
or the `X-CSRFToken` header for htmx); Flask-WTF's `CSRFProtect` checks it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, abort, current_app, g, redirect, request, url_for
from flask_wtf.csrf import CSRFProtect

from .. import audit as audit_log
from .. import people
from ..extensions import db
from ..models import Merchant
from ..ratelimit import client_address
from . import admin

COOKIE = "couponsvc_admin"
DEFAULT_TIMEZONE = "Asia/Shanghai"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})

csrf = CSRFProtect()


def init_app(app: Flask) -> None:
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)  # checked below, outside /api/
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", app.config.get("ADMIN_SESSION_MAX", 12 * 3600))
    app.config.setdefault("WTF_CSRF_SSL_STRICT", True)
    csrf.init_app(app)
    app.before_request(_protect_forms)


@admin.after_request
def _not_framed(response: Response) -> Response:
    """No admin page in another site's frame (a click on a framed page is not the person's:
    a site of the same registrable domain gets the Lax cookies in its frames)."""
    response.headers["X-Frame-Options"] = "DENY"
    response.headers.setdefault("Content-Security-Policy", "frame-ancestors 'none'")
    return response


def _protect_forms() -> None:
    if request.method in UNSAFE and not request.path.startswith("/api/"):
        csrf.protect()


def policy() -> people.SignInPolicy:
    config = current_app.config
    return people.SignInPolicy(
        max_failures=config["ADMIN_MAX_FAILURES"], lock_seconds=config["ADMIN_LOCK_SECONDS"],
        address_limit=config["ADMIN_SIGNIN_LIMIT_PER_ADDRESS"],
        idle_seconds=config["ADMIN_SESSION_IDLE"], absolute_seconds=config["ADMIN_SESSION_MAX"])


def limiter() -> people.Limiter:
    return people.Limiter(current_app.extensions["couponsvc.limiter"])


def cookie_secure() -> bool:
    return bool(current_app.config.get("SESSION_COOKIE_SECURE"))


def polled(view: Callable[..., Any]) -> Callable[..., Any]:
    """For what an open page asks for again by itself (htmx polling, never a person's
    click): it does not keep the session alive, whose idle time counts what the person
    does, and without a session it answers 401, which htmx leaves out of the page
    (`noSwap` in base.html), where `signed_in` would send the sign-in page to be put in."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not current_person(touch=False):
            abort(401)
        return view(*args, **kwargs)

    return wrapper


def current_person(*, touch: bool = True) -> bool:
    """Load the signed-in person into `g` (once per request); whether there is one.
    `touch=False`: the session's `last_seen_at` stays where it was (`polled`)."""
    if "person" in g:
        return g.person is not None
    g.person = g.principal = g.admin_session = None
    found = people.find_session(db.session, request.cookies.get(COOKIE), policy=policy(), touch=touch)
    if found is None:
        db.session.rollback()
        return False
    g.admin_session, g.person = found
    if db.session.dirty:  # last_seen_at moved on; asked before any query flushes it unseen
        db.session.commit()
    g.principal = people.principal_of(g.person)
    g.timezone = DEFAULT_TIMEZONE
    if g.person.merchant_id:
        g.timezone = db.session.get(Merchant, g.person.merchant_id).timezone or DEFAULT_TIMEZONE
    return True


def signed_in(view: Callable[..., Any]) -> Callable[..., Any]:
    """Only for a signed-in person; others are sent to the sign-in page (and back)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not current_person():
            target = request.full_path if request.method == "GET" else None
            return redirect(url_for("admin.sign_in", next=safe_next(target)))
        return view(*args, **kwargs)

    return wrapper


def operator_only(view: Callable[..., Any]) -> Callable[..., Any]:
    """For operators alone (put under `@signed_in`); a manager gets a 403 page."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not current_person():
            return redirect(url_for("admin.sign_in"))
        if not people.is_operator(g.principal):
            abort(403)
        return view(*args, **kwargs)

    return wrapper


def audit(action: str, target_type: str = "", target_id: str | None = "",
          merchant_id: str | None = None, **detail: Any):
    """An audit entry for what the signed-in person just did (the view commits)."""
    return audit_log.record(db.session, g.principal, action, target_type=target_type,
                            target_id=target_id, merchant_id=merchant_id,
                            address=client_address(), email=g.person.email, detail=detail)


def safe_next(target: str | None) -> str | None:
    """A local path to go back to after signing in, or None (never another site)."""
    if not target:
        return None
    target = target.rstrip("?")
    parts = urlsplit(target)
    if (parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//")
            or "\\" in target or not target.startswith("/admin")):
        return None
    return target
