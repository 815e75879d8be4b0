"""The PostgreSQL redeem runs its one statement on a connection in autocommit, lent by the
statement pool (`couponsvc/statement_pool.py`, `unit_of_work.statement_connection`); the
engine's pool never lends one in autocommit, or the next request's transaction on it
would commit statement by statement."""

from __future__ import annotations

import gc
import weakref

import psycopg
import pytest
from sqlalchemy import event, text

from couponsvc.extensions import db
from couponsvc.redeem.prepared import first_row
from couponsvc.statement_pool import statement_pool
from tests.factories import Shop, problem

pytestmark = pytest.mark.postgresql


def _pooled_autocommit(app) -> list[bool]:
    """The autocommit flag of every connection the pool holds."""
    with app.app_context():
        pool = db.engine.pool
        lent = [db.engine.raw_connection() for _ in range(pool.checkedin())]
        try:
            return [connection.driver_connection.autocommit for connection in lent]
        finally:
            for connection in lent:
                connection.close()


def _redeem(client, shop: Shop, code: str, key: str | None = None):
    headers = {"Idempotency-Key": key} if key else {}
    return client.post("redemptions", {"code": code}, key=shop.scanner, headers=headers)


def test_the_connection_goes_back_to_the_pool_out_of_autocommit(app, client):
    shop = Shop(client)
    first, second = shop.coupons(2)
    client.ok(_redeem(client, shop, first["code"]), 201)
    client.ok(_redeem(client, shop, second["code"], "till-1"), 201)
    problem(_redeem(client, shop, first["code"]), 409, "coupon_already_redeemed")
    problem(_redeem(client, shop, "U447K3JJ456K", "till-2"), 404, "coupon_not_found")
    flags = _pooled_autocommit(app)
    assert flags and not any(flags)


def test_the_statement_runs_on_the_statement_pool_not_the_engines(app, client):
    """The redeem borrows nothing from SQLAlchemy's pool (its key is known from memory),
    and its statement runs on a connection of the statement pool, in autocommit."""
    shop = Shop(client)
    first, second = shop.coupons(2)
    client.ok(_redeem(client, shop, first["code"]), 201)  # the key is remembered now
    with app.app_context():
        engine = db.engine
    checkouts = []

    def count(*args):
        checkouts.append(args)

    event.listen(engine, "checkout", count)
    try:
        client.ok(_redeem(client, shop, second["code"]), 201)
    finally:
        event.remove(engine, "checkout", count)
    assert checkouts == []
    pool = statement_pool(engine, 1, {})
    with pool.connection() as connection:
        assert connection.autocommit
    assert pool.get_stats()["requests_num"] >= 2


def test_the_statement_pool_closes_with_the_engine_and_a_new_one_serves_after(app, client):
    shop = Shop(client)
    first, second = shop.coupons(2)
    client.ok(_redeem(client, shop, first["code"]), 201)
    with app.app_context():
        engine = db.engine
        pool = statement_pool(engine, 1, {})
        engine.dispose()
    assert pool.closed
    client.ok(_redeem(client, shop, second["code"]), 201)
    with app.app_context():
        assert statement_pool(db.engine, 1, {}) is not pool


@pytest.mark.config(DB_POOL_SIZE=1)  # the statement pool holds one connection, the one ended
def test_a_connection_the_server_ended_is_thrown_away(app, client):
    shop = Shop(client)
    coupons = shop.coupons(3)
    client.ok(_redeem(client, shop, coupons[0]["code"]), 201)
    with app.app_context():
        pool = statement_pool(db.engine, 1, {})
        with pool.connection() as connection:
            pid = connection.info.backend_pid
        db.session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        db.session.commit()
    # the statement on the dead connection fails (a 500; the test client raises it) ...
    with pytest.raises(psycopg.OperationalError):
        _redeem(client, shop, coupons[1]["code"])
    client.ok(_redeem(client, shop, coupons[2]["code"]), 201)  # ... the next gets a live one


@pytest.mark.config(DB_PREPARE=False)
def test_the_statement_pool_connects_as_the_engine_does(app, client):
    """`COUPONSVC_DB_PREPARE=off` (PgBouncer before 1.22) reaches the statement's
    connections too: the engine's connect_args are theirs."""
    shop = Shop(client)
    client.ok(_redeem(client, shop, shop.coupon()["code"]), 201)
    with _statement_pool(app).connection() as connection:
        assert connection.prepare_threshold is None and connection.autocommit
        assert _prepared_on(connection) == []  # sent whole, unnamed, as PgBouncer needs


def _statement_pool(app):
    with app.app_context():
        return statement_pool(db.engine, 1, {})


def _prepared_on(connection: psycopg.Connection) -> list[str]:
    return [row[0] for row in connection.execute("SELECT name FROM pg_prepared_statements")]


@pytest.mark.config(DB_POOL_SIZE=1)
def test_the_statement_is_prepared_once_under_its_own_name(app, client):
    """On the statement pool's connection the redeem's statement is prepared under a name
    of its own the first time (`redeem/prepared.py`), not after psycopg's fifth execution
    under one of psycopg's, and each form of it (idempotent or not) once."""
    shop = Shop(client)
    coupons = shop.coupons(4)
    client.ok(_redeem(client, shop, coupons[0]["code"]), 201)
    pool = _statement_pool(app)
    with pool.connection() as connection:
        assert _prepared_on(connection) == ["couponsvc_redeem_nnn_0"]
    client.ok(_redeem(client, shop, coupons[1]["code"]), 201)
    client.ok(_redeem(client, shop, coupons[2]["code"], "till-1"), 201)
    problem(_redeem(client, shop, coupons[0]["code"], "till-2"), 409, "coupon_already_redeemed")
    with pool.connection() as connection:
        assert sorted(_prepared_on(connection)) == ["couponsvc_redeem_nnn_0", "couponsvc_redeem_nny_1"]


@pytest.mark.config(DB_POOL_SIZE=1)
def test_a_statement_the_server_forgot_is_prepared_again(app, client):
    """`DISCARD ALL` on the connection (as a pooler's reset would) drops the prepared
    statement; the next redeem prepares it again and is answered, once."""
    shop = Shop(client)
    first, second = shop.coupons(2)
    client.ok(_redeem(client, shop, first["code"], "till-1"), 201)
    pool = _statement_pool(app)
    with pool.connection() as connection:
        connection.execute("DISCARD ALL")
        assert _prepared_on(connection) == []
    body = client.ok(_redeem(client, shop, second["code"], "till-2"), 201)
    assert body["coupon"]["code"] == second["code"] and body["coupon"]["uses_left"] == 0
    with pool.connection() as connection:
        assert _prepared_on(connection) == ["couponsvc_redeem_nny_0"]
    redeemed = client.ok(client.get(f"redemptions?code={second['code']}", key=shop.manager))
    assert [item["id"] for item in redeemed["data"]] == [body["id"]]


def test_a_connection_let_go_is_not_kept_by_its_prepared_statements(app):
    """What `prepared.first_row` keeps of a connection goes with it: a connection the pool
    closes and lets go is freed, not held on to by that state."""
    with app.app_context():
        url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    connection = psycopg.connect(url, autocommit=True)
    assert first_row(connection, b"couponsvc_test", b"SELECT $1::int + 1", [41], tuple) == (42,)
    assert first_row(connection, b"couponsvc_test", b"SELECT $1::int + 1", [1], tuple) == (2,)
    assert _prepared_on(connection) == ["couponsvc_test_0"]
    gone = weakref.ref(connection)
    connection.close()
    del connection
    gc.collect()
    assert gone() is None
