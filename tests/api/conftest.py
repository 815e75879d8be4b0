"""Every answer of an API test is held to the OpenAPI document (`couponsvc/api/operations.py`).

An autouse fixture records each answer of /api/v1 during the test (around the WSGI app)
and, when the test ends, fails it if the document does not describe that answer: an
operation's status it does not list, a problem `code` it does not list for that status, or a
JSON body its schema refuses. A refusal added to the code without its reference fails here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pytest
from jsonschema import Draft202012Validator
from werkzeug.exceptions import HTTPException

from couponsvc.extensions import api

PREFIX = "/api/v1"


@dataclass(frozen=True)
class Answer:
    method: str
    rule: str  # the OpenAPI path: /api/v1/coupons/{code}
    status: int
    mimetype: str
    body: object


class Answers(list):
    """The answers of /api/v1 operations given during one test."""

    def operations(self) -> set[tuple[str, str]]:
        return {(answer.method, answer.rule) for answer in self}


def record_answers(app) -> Answers:
    """Record the answers as they leave the app (around `app.wsgi_app`, so that those of the
    redeem's lane, which no Flask hook sees, are held to the document too)."""
    answers = Answers()
    inner = app.wsgi_app

    def recording(environ, start_response):
        seen = {}

        def start(status, headers, exc_info=None):
            seen["status"], seen["headers"] = int(status.split()[0]), headers
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        result = inner(environ, start)
        try:
            chunks = list(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        _record(app, answers, environ, seen["status"], dict(seen["headers"]), b"".join(chunks))
        return chunks

    app.wsgi_app = recording
    return answers


def _record(app, answers: Answers, environ, status: int, headers: dict, body: bytes) -> None:
    method = environ["REQUEST_METHOD"]
    try:
        rule, _values = app.url_map.bind("couponsvc.test").match(
            environ.get("PATH_INFO", ""), method, return_rule=True)
    except HTTPException:
        return
    if not rule.rule.startswith(PREFIX) or method == "OPTIONS" or rule.endpoint.startswith("api-docs."):
        return  # the document and its page
    mimetype = headers.get("Content-Type", "").split(";")[0].strip()
    parsed = None
    if mimetype == "application/json" or mimetype.endswith("+json"):
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
    answers.append(Answer(method.lower(), re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule),
                          status, mimetype, parsed))


def undescribed(spec: dict, answers: list[Answer]) -> list[str]:
    """What the document does not describe of these answers, one line each."""
    wrong = []
    for answer in answers:
        where = f"{answer.method.upper()} {answer.rule} -> {answer.status}"
        operation = spec["paths"].get(answer.rule, {}).get(answer.method)
        if operation is None:
            wrong.append(f"{where}: no such operation in the document")
            continue
        response = operation["responses"].get(str(answer.status))
        if response is None:
            code = answer.body.get("code") if isinstance(answer.body, dict) else None
            wrong.append(f"{where} {code or ''}: status not documented")
            continue
        media = response.get("content", {}).get(answer.mimetype)
        if media is None:
            if response.get("content") or answer.body is not None:
                wrong.append(f"{where}: {answer.mimetype} not documented")
            continue
        if answer.body is None or "schema" not in media:
            continue
        schema = {**media["schema"], "components": spec["components"]}
        for error in Draft202012Validator(schema).iter_errors(answer.body):
            path = "/".join(str(part) for part in error.absolute_path)
            wrong.append(f"{where} {answer.body.get('code', '') if isinstance(answer.body, dict) else ''}"
                         f": at /{path}: {error.message[:300]}")
    return wrong


@pytest.fixture(autouse=True)
def answers(request) -> Answers:
    """The test's answers, checked against the document when it ends (tests not using `app` skip)."""
    if "app" not in request.fixturenames:
        yield Answers()
        return
    app = request.getfixturevalue("app")
    recorded = record_answers(app)
    yield recorded
    with app.app_context():
        spec = api.spec.to_dict()
    wrong = sorted(set(undescribed(spec, recorded)))
    assert not wrong, "answers the OpenAPI document does not describe:\n" + "\n".join(wrong)
