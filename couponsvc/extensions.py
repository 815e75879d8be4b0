"""Flask extensions, created unbound and bound in `create_app()`."""

from __future__ import annotations

from flask_limiter import Limiter
from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
api = Api()


def _limiter_key() -> str:
    from flask import request

    return request.remote_addr or "unknown"


limiter = Limiter(key_func=_limiter_key)
