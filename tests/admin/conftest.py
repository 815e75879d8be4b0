"""Fixtures of the admin pages' tests: people, and a browser-like client signed in
through the real sign-in form (CSRF token included).

    def test_something(app, operator, manager_of, signed_in, shop):
        page = signed_in(app.test_client(), manager_of(merchant_id))
        answer = page.get("/admin/campaigns")
        answer = page.post("/admin/campaigns/new", data={...})   # the CSRF token is added

`signed_in(client, person)` takes a Flask test client (or the API `Client` of
tests/factories.py, whose test client it uses) and returns a `Pages` client: `get`,
`post` (adds `csrf_token` from the signed-in session unless given), `csrf_token()`, and
`http` (the Flask test client itself, for a post without the token).
"""

from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass

import pytest

from couponsvc import people
from couponsvc.extensions import db
from couponsvc.models import AdminUser

PASSWORD = "correct horse battery"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
_KEY_TOKEN = re.compile(r'name="key.token" value="([^"]+)"')
_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
_numbers = itertools.count(1)


@dataclass(frozen=True)
class Person:
    """A person the tests created: enough to sign in and to find their row."""

    id: str
    email: str
    password: str
    role: str
    merchant_id: str | None


@functools.cache
def _hash_of(password: str) -> str:
    """argon2 on purpose costs ~50 ms or more: hash each test password once per run."""
    return people.hash_password(password)


def make_person(app, *, role: str, merchant_id: str | None = None, email: str | None = None,
                password: str = PASSWORD, name: str = "") -> Person:
    email = email or f"{role}{next(_numbers)}@example.cn"
    with app.app_context():
        user = people.create_person(db.session, people.SYSTEM, email=email, password=password,
                                    role=role, merchant_id=merchant_id, name=name,
                                    password_hash=_hash_of(password))
        db.session.commit()
        person = Person(id=user.id, email=user.email, password=password, role=user.role,
                        merchant_id=user.merchant_id)
        db.session.remove()
    return person


@pytest.fixture
def operator(app) -> Person:
    """An operator: sees every merchant."""
    return make_person(app, role=people.OPERATOR, name="运营")


@pytest.fixture
def manager_of(app):
    """`manager_of(merchant_id)`: a new manager of that merchant (a merchant id, or a dict
    with an "id" as the API returns it)."""

    def make(merchant, **kwargs) -> Person:
        merchant_id = merchant["id"] if isinstance(merchant, dict) else merchant
        return make_person(app, role=people.MANAGER, merchant_id=merchant_id, **kwargs)

    return make


class Pages:
    """A Flask test client that posts forms with their CSRF token, like a browser."""

    def __init__(self, http) -> None:
        self.http = http
        self._token: str | None = None

    def get(self, path: str, **kwargs):
        answer = self.http.get(path, **kwargs)
        self._remember(answer)
        return answer

    def post(self, path: str, data=None, *, csrf: bool = True, **kwargs):
        data = dict(data or {})
        if csrf and "csrf_token" not in data:
            data["csrf_token"] = self.csrf_token()
        answer = self.http.post(path, data=data, **kwargs)
        self._remember(answer)
        return answer

    def key_form(self, merchant_id: str, **fields) -> dict[str, str]:
        """The merchant page's API key form as a person sends it: with the page's one-time token."""
        html = self.get(f"/admin/merchants/{merchant_id}").get_data(as_text=True)
        return {"key.token": _KEY_TOKEN.search(html).group(1), **fields}

    def csrf_token(self) -> str:
        if self._token is None:
            self.get("/admin/sign-in" if not self._signed_in() else "/admin/sessions")
        assert self._token, "no page gave a CSRF token"
        return self._token

    def _signed_in(self) -> bool:
        return self.http.get_cookie("couponsvc_admin") is not None

    def _remember(self, answer) -> None:
        if answer.mimetype != "text/html":
            return
        text = answer.get_data(as_text=True)
        found = _META.search(text) or _TOKEN.search(text)
        if found:
            self._token = found.group(1)

    def sign_in(self, email: str, password: str, **kwargs):
        """Post the sign-in form as a person would (fresh token from the form)."""
        self._token = None
        self.get("/admin/sign-in")
        return self.post("/admin/sign-in", {"email": email, "password": password}, **kwargs)


def pages(client) -> Pages:
    """A `Pages` client over a Flask test client or the API `Client` (its `http`)."""
    if isinstance(client, Pages):
        return client
    return Pages(getattr(client, "http", client))


@pytest.fixture
def signed_in():
    """`signed_in(client, person)`: sign in through the real form; returns a `Pages` client."""

    def sign(client, person: Person | AdminUser) -> Pages:
        page = pages(client)
        answer = page.sign_in(person.email, getattr(person, "password", PASSWORD))
        assert answer.status_code == 302, answer.get_data(as_text=True)[:2000]
        assert page._signed_in()
        page._token = None  # the token changes with the sign-in
        return page

    return sign
