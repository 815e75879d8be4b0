"""The principal knows no Flask; domain modules take their settings as arguments.

Domain code is every module of couponsvc/ except the HTTP and application glue listed
in `GLUE`; the check reads the code's syntax tree, so a comment or a docstring that
mentions `current_app` neither trips it nor hides a real read.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from couponsvc import merchants
from couponsvc.errors import DomainError
from couponsvc.extensions import db
from couponsvc.models import Merchant
from couponsvc.principal import MANAGER, Principal, visible
from tests.factories import Shop

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "couponsvc"

# Where Flask belongs: the HTTP layer and the application's wiring.
GLUE = {
    "api",  # views, bearer-key authentication
    "migrations",  # Alembic's env.py runs inside the app
    "__init__.py", "cli.py", "extensions.py", "health.py",
    "qr_keys.py",  # the keyring and data keys registered on the app
    "jobs.py",  # the app's job runner (in-process or RQ)
    "errors.py",  # problem+json rendering of DomainError and HTTP errors
    "i18n.py",  # the request's language (Accept-Language) and the catalogue's look-ups
    "web_session.py",  # the cookie session interface
    "ratelimit.py",  # the look-up budget, per request (used by api/ only)
    "problems",  # the problem pages' blueprint, for people and clients
    "public_url.py",  # the app's public base URL, read from its configuration
    "admin",  # the admin pages: a signed-in person's requests
    "scan",  # the scanner page's blueprint
    "deal_pages",  # the public deal pages and the poster's answer
    "compression.py", "static_assets.py",  # answers and files as HTTP serves them
    "logs/access.py",  # the access line and request id of a request
    "metrics/endpoint.py",  # /metrics, for the addresses allowed
}
FLASK_REQUEST_STATE = {"current_app", "g", "request", "session"}


def domain_modules() -> list[Path]:
    return sorted(path for path in PACKAGE.rglob("*.py")
                  if path.relative_to(PACKAGE).parts[0] not in GLUE
                  and path.relative_to(PACKAGE).as_posix() not in GLUE)


def flask_state_reads(path: Path) -> list[str]:
    """Where a module takes `current_app`, `g`, `request` or `session` from Flask."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "flask":
            found += [f"{path.name}:{node.lineno} {a.name}" for a in node.names if a.name in FLASK_REQUEST_STATE]
        elif (isinstance(node, ast.Attribute) and node.attr in FLASK_REQUEST_STATE
              and isinstance(node.value, ast.Name) and node.value.id == "flask"):
            found.append(f"{path.name}:{node.lineno} flask.{node.attr}")
    return found


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")


def test_importing_the_principal_imports_no_flask():
    names = [module_name(path) for path in domain_modules()]
    code = ("import importlib, sys\n"
            "import couponsvc.principal\n"
            "print('flask' in sys.modules, 'werkzeug' in sys.modules)\n"
            f"for name in {names!r}:\n"
            "    importlib.import_module(name)\n"
            "print('imported', len(sys.modules) > 0)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert out.returncode == 0, out.stderr  # every domain module imports on its own
    assert out.stdout.split() == ["False", "False", "imported", "True"]


def test_no_domain_module_reads_flask_request_state():
    assert len(domain_modules()) > 30  # the walk finds the domain (redeem/, outbox/, deliveries/...)
    offenders = [found for path in domain_modules() for found in flask_state_reads(path)]
    assert offenders == []


@pytest.mark.parametrize("source, caught", [
    ('"""Reads `current_app.config`."""\n# from flask import current_app\n', []),
    ("from flask import current_app as app, jsonify\n", ["m.py:1 current_app"]),
    ("import flask\n\ndef f():\n    return flask.g.x\n", ["m.py:4 flask.g"]),
])
def test_the_check_sees_code_not_comments(tmp_path, source, caught):
    module = tmp_path / "m.py"
    module.write_text(source)
    assert flask_state_reads(module) == caught


def test_a_person_logged_in_acts_with_the_same_principal_and_rules(client, app):
    """The admin pages (next issue) log a person in, not a key: a Principal with no key
    reaches the same domain functions and sees exactly its merchant."""
    mine, theirs = Shop(client), Shop(client)
    with app.app_context():
        person = Principal(key_id=None, user_id="adm_1", role=MANAGER,
                           merchant_id=mine.merchant["id"], store_id=None)
        assert merchants.get_merchant(db.session, person, mine.merchant["id"]).id == mine.merchant["id"]
        with pytest.raises(DomainError) as refused:
            visible(db.session, person, Merchant, theirs.merchant["id"], name="merchant")
        assert refused.value.code == "not_found"
