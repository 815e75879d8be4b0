"""The declarative base of every model: plain SQLAlchemy, no Flask.

Flask-SQLAlchemy's `db` is built on it (`SQLAlchemy(model_class=Base)` in
`extensions.py`), so `db.metadata`, `db.session` and Alembic see these models, while
importing a model (or a domain module) does not import Flask.
"""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass
