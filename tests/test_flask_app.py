"""The app's `ensure_sync` answers as Flask's does, without asking `inspect` for plain functions."""

from __future__ import annotations

import functools

from flask import Flask

from couponsvc.flask_app import CouponsvcFlask


def plain():
    return "plain"


async def coroutine():
    return "coroutine"


class Callable:
    def __call__(self):
        return "callable"

    def method(self):
        return "method"


def test_plain_functions_and_methods_come_back_as_they_are():
    app = CouponsvcFlask(__name__)
    bound = Callable().method
    assert app.ensure_sync(plain) is plain
    assert app.ensure_sync(bound) is bound


def test_anything_else_is_asked_as_flask_asks(monkeypatch):
    app = CouponsvcFlask(__name__)
    asked = []
    monkeypatch.setattr(Flask, "async_to_sync", lambda self, func: asked.append(func) or "wrapped")
    assert app.ensure_sync(coroutine) == "wrapped"  # an async def is run through async_to_sync
    partial = functools.partial(plain)
    instance = Callable()
    assert app.ensure_sync(partial) is partial and app.ensure_sync(instance) is instance
    assert asked == [coroutine]


def test_the_app_factory_makes_one(app):
    assert isinstance(app, CouponsvcFlask)
