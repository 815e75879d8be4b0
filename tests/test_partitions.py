"""Monthly partitions (migration 0015, couponsvc/partitions.py) and the daily upkeep
(couponsvc/retention.py).

The migration and the partitions' upkeep are tried on databases of their own, made for
each test (what they create and drop touches no other test); the purges run on both
backends.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import text

from couponsvc import retention
from couponsvc.extensions import db
from couponsvc.outbox.emit import emit
from couponsvc.outbox.feed import read_events
from couponsvc.partitions import add_months, month_of, partition_name
from tests.conftest import make_app, scratch_database

NOW = datetime.now(UTC)
THIS_MONTH = month_of(NOW)
TABLES = {"redemptions": "redeemed_at", "redemption_attempts": "created_at",
          "events": "created_at", "deliveries": "created_at"}
ORDER_BY = {"redemptions": "id", "redemption_attempts": "id", "events": "seq", "deliveries": "id",
            "delivery_attempts": "id"}

postgresql_only = pytest.mark.postgresql  # SQLite keeps plain tables: its pass leaves these out


@pytest.fixture
def own_database(instance_path):
    """The URL of a new, empty PostgreSQL database, dropped afterwards."""
    yield from scratch_database("couponsvc_partitions")


def _migrate(url: str, instance_path: str, revision: str, down: bool = False):
    app = make_app(url, instance_path)
    with app.app_context():
        (downgrade if down else upgrade)(revision=revision)
        db.engine.dispose()
    return app


def _month_start(months_ago: int) -> str:
    return f"{add_months(THIS_MONTH, -months_ago).isoformat()} 00:00:00+00"


def _seed(app, months_ago: int, *, rows: int = 3, open_delivery: bool = False) -> None:
    """`rows` of each table in the month `months_ago` before this one (revision 0014's
    schema or 0015's): events, one positioned and delivered each, redemptions, attempts."""
    start, tag = _month_start(months_ago), f"m{months_ago}"
    statements = [
        "INSERT INTO merchants (id, name, city, timezone, created_at) "
        "VALUES ('mer_1', 'M', 'Ganzhou', 'Asia/Shanghai', now()) ON CONFLICT DO NOTHING",
        "INSERT INTO campaigns (id, merchant_id, title, description, city, price, currency, sales_start, "
        "sales_end, min_group_size, uses_per_coupon, valid_from, valid_until, status, sold, issued, "
        "created_at, updated_at) VALUES ('cmp_1', 'mer_1', 't', 'd', 'Ganzhou', 100, 'CNY', now(), now(), "
        "1, 1, now(), now(), 'active', 0, 0, now(), now()) ON CONFLICT DO NOTHING",
        "INSERT INTO coupons (code, campaign_id, merchant_id, status, uses_total, uses_left, valid_from, "
        "valid_until, seq, created_at) VALUES ('C1', 'cmp_1', 'mer_1', 'active', 1, 1, now(), now(), 0, "
        "now()) ON CONFLICT DO NOTHING",
        "INSERT INTO integrations (id, merchant_id, adapter, config, events, status, timeout, created_at, "
        "updated_at) VALUES ('int_1', 'mer_1', 'webhook', '{}', '[]', 'active', 15, now(), now()) "
        "ON CONFLICT DO NOTHING",
        f"INSERT INTO redemptions (id, coupon_code, campaign_id, merchant_id, store_id, api_key_id, uses, "
        f"redeemed_at, scanned_at) SELECT 'red_{tag}_' || g, 'C1', 'cmp_1', 'mer_1', 'sto_1', 'key_1', 1, "
        f"t, t FROM generate_series(1, {rows}) g, LATERAL (SELECT timestamptz '{start}' + g * interval '2 days' "
        f"AS t) AS moment",
        f"INSERT INTO redemption_attempts (merchant_id, coupon_code, action, reason, raw_input, created_at) "
        f"SELECT 'mer_1', 'C1', 'redeem', 'coupon_not_found', 'x', timestamptz '{start}' + g * interval '2 days' "
        f"FROM generate_series(1, {rows}) g",
        f"INSERT INTO events (id, type, merchant_id, data, created_at, position) "
        f"SELECT 'evt_{tag}_' || g, 'coupon.redeemed', 'mer_1', '{{}}', "
        f"timestamptz '{start}' + g * interval '2 days', nextval('events_position_seq') "
        f"FROM generate_series(1, {rows}) g",
        # a delivery written a moment after its event (as fan-out did before 0015)
        f"INSERT INTO deliveries (event_seq, integration_id, merchant_id, status, attempts, next_attempt_at, "
        f"created_at, updated_at) SELECT seq, 'int_1', 'mer_1', 'succeeded', 1, created_at, "
        f"created_at + interval '3 ms', created_at FROM events WHERE id LIKE 'evt_{tag}_%'",
        "INSERT INTO delivery_attempts (delivery_id, number, started_at, duration_ms, outcome) "
        "SELECT id, 1, created_at, 5, 'succeeded' FROM deliveries d WHERE NOT EXISTS "
        "(SELECT 1 FROM delivery_attempts a WHERE a.delivery_id = d.id)",
    ]
    if open_delivery:
        statements.append(f"UPDATE deliveries SET status = 'failed' WHERE event_seq = "
                          f"(SELECT min(seq) FROM events WHERE id LIKE 'evt_{tag}_%')")
    _execute(app, *statements)


def _execute(app, *statements) -> None:
    with app.app_context():
        for statement in statements:
            db.session.execute(text(statement))
        db.session.commit()
        db.engine.dispose()


def _all(app, sql: str, **params) -> list[tuple]:
    with app.app_context():
        found = [tuple(row) for row in db.session.execute(text(sql), params).all()]
        db.session.remove()
        db.engine.dispose()
    return found


def _rows(app) -> dict[str, list[tuple]]:
    return {table: _all(app, f"SELECT * FROM {table} ORDER BY {key}") for table, key in ORDER_BY.items()}


def _partitions(app, table: str) -> list[str]:
    return sorted(name for (name,) in _all(
        app, "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
             "WHERE i.inhparent = CAST(:t AS regclass)", t=table))


def _misplaced(app, table: str) -> int:
    """Rows not in the partition named after their month."""
    key = TABLES[table]
    return _all(app, f"SELECT count(*) FROM {table} WHERE tableoid::regclass::text <> "
                     f"'{table}_p' || to_char({key} AT TIME ZONE 'UTC', 'YYYYMM')")[0][0]


def _constraints(app, table: str) -> list[str]:
    return sorted(name for (name,) in _all(
        app, "SELECT conname FROM pg_constraint WHERE conrelid = CAST(:t AS regclass) AND contype <> 'n'",
        t=table))


# -- the migration ---------------------------------------------------------------------------


@postgresql_only
def test_the_migration_keeps_every_row_id_position_and_cursor_and_goes_back(own_database, instance_path):
    app = _migrate(own_database, instance_path, "0014")
    for months_ago in (7, 2, 0):
        _seed(app, months_ago)
    _execute(app, "INSERT INTO events (id, type, merchant_id, data, created_at) "  # not numbered yet
                  "VALUES ('evt_late', 'ping', 'mer_1', '{}', now())")
    before = _rows(app)
    with app.app_context():
        first_page = read_events(db.session, merchant_id="mer_1", after=None, type_=None, limit=4)
        pages_before = [(e.id, e.position) for e in first_page[0]], first_page[1]
        db.engine.dispose()

    _migrate(own_database, instance_path, "0015")
    after = _rows(app)
    for table in ("redemptions", "redemption_attempts", "events", "delivery_attempts"):
        assert after[table] == before[table], table
    event_time = {row[0]: row[7] for row in before["events"]}  # seq: created_at
    assert [row[:11] + (event_time[row[1]],) + row[12:] for row in before["deliveries"]] == after["deliveries"]
    for table in TABLES:
        assert _all(app, "SELECT relkind FROM pg_class WHERE relname = :t", t=table) == [("p",)]
        assert _misplaced(app, table) == 0, table
        months = {add_months(THIS_MONTH, -n) for n in (7, 2)} | {add_months(THIS_MONTH, n) for n in range(4)}
        assert _partitions(app, table) == sorted([partition_name(table, m) for m in months]
                                                 + [f"{table}_default"])
    assert _constraints(app, "deliveries") == ["deliveries_integration_id_fkey", "deliveries_pkey",
                                               "uq_deliveries_event_integration"]
    with app.app_context():  # the same pages, cursors and positions; seqs and ids go on
        page = read_events(db.session, merchant_id="mer_1", after=None, type_=None, limit=4)
        assert ([(e.id, e.position) for e in page[0]], page[1]) == pages_before
        rest = read_events(db.session, merchant_id="mer_1", after=page[1], type_=None, limit=100)[0]
        assert [e.id for e in rest] == [row[1] for row in before["events"] if row[8] is not None][4:]
        emit(db.session, "ping", merchant_id="mer_1", data={})
        db.session.commit()
        assert db.session.execute(text("SELECT max(seq) FROM events")).scalar() == before["events"][-1][0] + 1
        assert db.session.execute(text("SELECT nextval('deliveries_id_seq'), "
                                       "nextval('redemption_attempts_id_seq')")).one() == (
            before["deliveries"][-1][0] + 1, before["redemption_attempts"][-1][0] + 1)
        db.session.rollback()
        db.engine.dispose()
    _execute(app, "DELETE FROM events WHERE type = 'ping' AND id <> 'evt_late'")

    _migrate(own_database, instance_path, "0014", down=True)
    assert _rows(app) == after
    for table in TABLES:
        assert _all(app, "SELECT relkind FROM pg_class WHERE relname = :t", t=table) == [("r",)]
    assert _constraints(app, "events") == ["events_id_key", "events_pkey", "events_position_key"]
    assert _constraints(app, "delivery_attempts") == ["delivery_attempts_delivery_id_fkey",
                                                      "delivery_attempts_pkey"]


# -- the upkeep of partitions --------------------------------------------------------------


def _upkeep(app, now: datetime, retention_months: int):
    with app.app_context():
        done = retention.run(db.session, now, retention_months=retention_months, idempotency_ttl=86400)
        db.session.remove()
        db.engine.dispose()
    return done


@postgresql_only
def test_retention_drops_whole_months_and_keeps_one_with_an_open_delivery(own_database, instance_path):
    app = _migrate(own_database, instance_path, "0014")
    _seed(app, 15)
    _seed(app, 14, open_delivery=True)
    _seed(app, 13)
    _seed(app, 0)
    _migrate(own_database, instance_path, "0015")
    old, open_, kept = (add_months(THIS_MONTH, -n) for n in (15, 14, 13))
    attempts = _all(app, "SELECT count(*) FROM delivery_attempts")[0][0]

    done = _upkeep(app, NOW, retention_months=13)  # months before 13 months ago go
    assert sorted(done.partitions.dropped) == sorted(
        [partition_name(t, old) for t in TABLES]
        + [partition_name(t, open_) for t in ("redemptions", "redemption_attempts")])
    assert done.partitions.kept == [(f"{partition_name('deliveries', open_)}, {partition_name('events', open_)}",
                                     "holds 1 open deliveries (pending, failed or held)")]
    assert done.partitions.created == []
    for table in TABLES:
        assert partition_name(table, kept) in _partitions(app, table)
        assert partition_name(table, THIS_MONTH) in _partitions(app, table)
    assert partition_name("events", open_) in _partitions(app, "events")
    assert _all(app, "SELECT count(*) FROM delivery_attempts")[0][0] == attempts - 3  # those of `old`
    assert _all(app, "SELECT count(*) FROM events")[0][0] == 9

    _execute(app, "UPDATE deliveries SET status = 'dead' WHERE status = 'failed'")
    done = _upkeep(app, NOW, retention_months=1)  # the month's delivery closed; never this month
    assert sorted(done.partitions.dropped) == sorted(
        [partition_name(t, open_) for t in ("events", "deliveries")] + [partition_name(t, kept) for t in TABLES])
    assert done.partitions.kept == []
    for table in TABLES:
        assert _partitions(app, table)[:2] == [f"{table}_default", partition_name(table, THIS_MONTH)]
        assert _all(app, f"SELECT count(*) FROM {table}")[0][0] == 3
    assert _all(app, "SELECT count(*) FROM delivery_attempts")[0][0] == 3


@postgresql_only
def test_months_ahead_are_made_and_rows_of_a_month_without_one_wait_in_default(own_database, instance_path):
    app = _migrate(own_database, instance_path, "head")
    far = add_months(THIS_MONTH, 6)  # the migration made partitions up to 3 months ahead
    _execute(app,
             "INSERT INTO events (id, type, merchant_id, data, created_at) "
             f"VALUES ('evt_far', 'ping', NULL, '{{}}', '{far.isoformat()} 12:00:00+00')",
             "INSERT INTO redemption_attempts (merchant_id, action, reason, raw_input, created_at) "
             f"VALUES ('mer_1', 'redeem', 'coupon_not_found', 'x', '{far.isoformat()} 12:00:00+00')")
    assert _all(app, "SELECT tableoid::regclass::text FROM events") == [("events_default",)]

    later = datetime.combine(add_months(THIS_MONTH, 4), datetime.min.time(), UTC) + timedelta(days=2)
    done = _upkeep(app, later, retention_months=0)  # retention 0: nothing dropped
    assert sorted(done.partitions.created) == sorted(
        partition_name(t, add_months(THIS_MONTH, n)) for t in TABLES for n in (4, 5, 6, 7))
    assert done.partitions.moved == 2 and done.partitions.dropped == []
    assert _all(app, "SELECT id, tableoid::regclass::text FROM events") == [
        ("evt_far", partition_name("events", far))]
    assert _all(app, "SELECT tableoid::regclass::text FROM redemption_attempts") == [
        (partition_name("redemption_attempts", far),)]
    assert _all(app, "SELECT count(*) FROM events_default")[0][0] == 0
    assert _upkeep(app, later, retention_months=0).partitions.created == []  # once only
    # the moved partition has its parent's indexes, like one made empty
    assert len(_all(app, "SELECT indexname FROM pg_indexes WHERE tablename = :t",
                    t=partition_name("events", far))) == 5


@postgresql_only
def test_making_a_partition_waits_for_a_redeem_and_never_deadlocks_with_it(own_database, instance_path):
    """A redeem locks `coupons` (its UPDATE) before `redemptions` (its INSERT). Making a
    redemptions partition needs both (`coupons` for the foreign key's triggers); in the
    DDL's own order, the parent first, it deadlocked with a redeem between its two steps,
    and PostgreSQL could end the redeem. The upkeep now waits for `coupons` before it
    takes the parent: the redeem commits, then the partitions are made."""
    app = _migrate(own_database, instance_path, "head")
    _seed(app, 0, rows=1)
    later = datetime.combine(add_months(THIS_MONTH, 4), datetime.min.time(), UTC) + timedelta(days=2)
    done: list = []
    with psycopg.connect(own_database.replace("+psycopg", "")) as till:
        till.execute("SET deadlock_timeout = '100ms'")  # a deadlock, if any, found at once
        till.execute("UPDATE coupons SET seq = seq + 1 WHERE code = 'C1'")  # the redeem's first step
        upkeep = threading.Thread(target=lambda: done.append(_upkeep(app, later, retention_months=0)))
        upkeep.start()
        try:
            _wait_for_a_lock_wait(till, "coupons")
            till.execute("INSERT INTO redemptions (id, coupon_code, campaign_id, merchant_id, store_id, "
                         "api_key_id, uses, redeemed_at, scanned_at) "
                         "VALUES ('red_till', 'C1', 'cmp_1', 'mer_1', 'sto_1', 'key_1', 1, now(), now())")
            till.commit()
        finally:
            till.rollback()
            upkeep.join(30)
    assert done and done[0].partitions.kept == []
    assert partition_name("redemptions", add_months(THIS_MONTH, 4)) in done[0].partitions.created
    assert _all(app, "SELECT count(*) FROM redemptions WHERE id = 'red_till'") == [(1,)]


def _wait_for_a_lock_wait(connection: psycopg.Connection, table: str) -> None:
    """Until another session waits for a lock on `table` (the upkeep, behind the till)."""
    for _ in range(300):
        waiting = connection.execute(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND pid <> pg_backend_pid() "
            "AND relation = CAST(%s AS regclass)", (table,)).fetchone()[0]
        if waiting:
            return
        time.sleep(0.02)
    raise AssertionError(f"nothing came to wait for {table}")


# -- the purges (both backends) ---------------------------------------------------------------


def test_the_upkeep_deletes_expired_idempotency_records_and_ended_lookup_blocks(app):
    with app.app_context():
        ttl = app.config["IDEMPOTENCY_TTL"]
        for key, age in (("old", ttl + 60), ("fresh", ttl - 60)):
            db.session.execute(text(
                "INSERT INTO idempotency_keys (api_key_id, key, request_hash, status_code, headers, body, "
                "created_at) VALUES ('key_1', :key, 'h', 201, '{}', '', :at)"),
                {"key": key, "at": NOW - timedelta(seconds=age)})
        for subject, until in (("key:ended", NOW - timedelta(seconds=1)), ("key:on", NOW + timedelta(minutes=1))):
            db.session.execute(text("INSERT INTO lookup_blocks (subject, until) VALUES (:s, :u)"),
                               {"s": subject, "u": until})
        db.session.commit()
        done = retention.run(db.session, NOW, retention_months=0, idempotency_ttl=ttl)
        assert (done.idempotency_keys, done.lookup_blocks) == (1, 1)
        assert db.session.execute(text("SELECT key FROM idempotency_keys")).scalars().all() == ["fresh"]
        assert db.session.execute(text("SELECT subject FROM lookup_blocks")).scalars().all() == ["key:on"]
        assert done.partitions.created == [] and done.partitions.dropped == []


def test_couponsvc_partitions_runs_the_upkeep_by_hand(app):
    with app.app_context():
        db.session.execute(text("INSERT INTO lookup_blocks (subject, until) VALUES ('addr:1', :u)"),
                           {"u": NOW - timedelta(minutes=1)})
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["partitions"])
    assert result.exit_code == 0, result.output
    assert "0 expired idempotency record(s) and 1 ended look-up block(s) deleted" in result.output
    assert "dropped" not in result.output  # COUPONSVC_RETENTION_MONTHS=0: nothing
    with app.app_context():
        assert db.session.execute(text("SELECT count(*) FROM lookup_blocks")).scalar() == 0


@postgresql_only
def test_a_busy_table_is_left_for_the_next_run_not_waited_for(own_database, instance_path, monkeypatch):
    app = _migrate(own_database, instance_path, "0014")
    _seed(app, 15)
    _migrate(own_database, instance_path, "0015")
    monkeypatch.setattr("couponsvc.partitions.LOCK_TIMEOUT", "200ms")
    old = add_months(THIS_MONTH, -15)
    with psycopg.connect(own_database.replace("+psycopg", "")) as reader:  # a long query on redemptions
        reader.execute("SELECT count(*) FROM redemptions")
        done = _upkeep(app, NOW, retention_months=12)
        assert [what for what, _ in done.partitions.kept] == [partition_name("redemptions", old)]
        assert "lock timeout" in done.partitions.kept[0][1]
        assert partition_name("redemptions", old) in _partitions(app, "redemptions")
        assert partition_name("events", old) in done.partitions.dropped
    assert _upkeep(app, NOW, retention_months=12).partitions.dropped == [partition_name("redemptions", old)]
