"""The connections the redeem's one statement runs on (PostgreSQL): a psycopg pool in autocommit.

The redeem's statement commits itself (`api/unit_of_work.py`, `single_statement`), so
the connection it runs on must be in autocommit. Borrowed from SQLAlchemy's pool, a
connection had to be set to autocommit and back around every statement, through the
pool's checkout and reset: about 4% of the redeem's work in the app. The connections of
this pool (`psycopg_pool`, which the ceiling of `scripts/bench_redeem.py` uses too) are
in autocommit from the start, and lending one costs a third of that.

One pool per process and database, made when the first statement needs it, as large as
the engine's (`COUPONSVC_DB_POOL_SIZE`: a process may hold that many connections more,
docs/deployment.md), connected as the engine connects: its URL and its `connect_args`
(`COUPONSVC_DB_PREPARE=off` is set there, `couponsvc/__init__.py`).
It is closed with the engine (`Engine.dispose()`). A broken connection handed back is
thrown away by the pool, and a new one made for the next statement.
"""

from __future__ import annotations

import threading
import weakref

from psycopg_pool import ConnectionPool
from sqlalchemy import event
from sqlalchemy.engine import Engine

WAIT_SECONDS = 10  # for a connection, when none can be made (the database is down): then 500

_POOLS: weakref.WeakKeyDictionary[Engine, ConnectionPool] = weakref.WeakKeyDictionary()
_made = threading.Lock()


def statement_pool(engine: Engine, size: int, connect_args: dict) -> ConnectionPool:
    """The pool of `engine`'s database, made the first time it is asked for; its
    connections get the engine's `connect_args`, and autocommit."""
    pool = _POOLS.get(engine)
    if pool is None:
        with _made:
            pool = _POOLS.get(engine)
            if pool is None:
                pool = _POOLS[engine] = _open(engine, size, connect_args)
    return pool


def _open(engine: Engine, size: int, connect_args: dict) -> ConnectionPool:
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    kwargs = {**connect_args, "autocommit": True}
    pool = ConnectionPool(url, min_size=1, max_size=size, kwargs=kwargs, num_workers=1, open=False,
                          timeout=WAIT_SECONDS, name="couponsvc-statements")
    pool.open(wait=False)

    @event.listens_for(engine, "engine_disposed", once=True)
    def _close(disposed: Engine) -> None:
        _POOLS.pop(disposed, None)
        pool.close()

    return pool
