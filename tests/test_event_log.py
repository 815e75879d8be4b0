"""GET /events pages in commit order and never steps past an event that commits late."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from couponsvc.extensions import db
from couponsvc.outbox.emit import emit
from couponsvc.outbox.feed import read_events
from couponsvc.outbox.positions import assign_positions, unpositioned_count


def _emit_in_own_transaction(app, type_="ping"):
    with app.app_context():
        session = Session(db.engine)
        emit(session, type_, merchant_id=None, data={})
        return session


@pytest.mark.postgresql
def test_an_event_committed_late_is_not_skipped(app, client):
    slow = _emit_in_own_transaction(app)          # takes seq 1, commits last
    fast = _emit_in_own_transaction(app)          # takes seq 2, commits first
    fast.commit()
    seen = client.ok(client.get("events"))
    assert seen["data"] == []                     # seq 2 must wait: seq 1 may still commit
    slow.commit()
    seen = client.events()
    assert [e["type"] for e in seen] == ["ping", "ping"]
    cursor = seen[-1]["cursor"]
    assert client.ok(client.get("events", query_string={"after": cursor}))["data"] == []
    fast.close()
    slow.close()


def test_events_page_with_cursors_without_gaps(app, client):
    with app.app_context():
        for n in range(7):
            emit(db.session, "ping", merchant_id=None, data={"n": n})
        db.session.commit()
    client.events()  # wait until numbered
    seen, after = [], None
    while True:
        page = client.ok(client.get("events", query_string={"limit": 3, **({"after": after} if after else {})}))
        seen.extend(event["data"]["n"] for event in page["data"])
        after = page["next"]
        if after is None:
            break
    assert seen == list(range(7))


def test_a_rolled_back_event_never_appears(app):
    with app.app_context():
        emit(db.session, "ping", merchant_id=None, data={"kept": False})
        db.session.rollback()
        emit(db.session, "ping", merchant_id=None, data={"kept": True})
        db.session.commit()
        _number_all()
        rows, _ = read_events(db.session, merchant_id=None, after=None, type_=None, limit=10)
        assert [row.data for row in rows] == [{"kept": True}]


def test_bad_cursor_is_a_validation_error(client):
    refused = client.get("events", query_string={"after": "abc"})
    assert refused.status_code == 422 and refused.get_json()["code"] == "validation_error"


def test_get_events_writes_nothing_and_the_relay_sweep_numbers_what_it_shows(app, client):
    from workers.relay import sweep

    with app.app_context():
        for n in range(3):
            emit(db.session, "ping", merchant_id=None, data={"n": n})
        db.session.commit()
        engine = db.engine
    writes: list[str] = []

    def note(conn, cursor, statement, parameters, context, executemany):
        words = statement.lstrip().split(None, 1)
        if (words and words[0].upper() in ("INSERT", "UPDATE", "DELETE")) \
                or "nextval" in statement or "advisory" in statement:
            writes.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        unnumbered = client.ok(client.get("events"))
    finally:
        event.remove(engine, "before_cursor_execute", note)
    assert writes == []
    assert unnumbered["data"] == []  # nothing numbered them yet: not the request

    deadline = time.monotonic() + 20  # another writer of the cluster may hold the numbering back
    while True:
        with app.app_context():
            sweep()
            left = unpositioned_count(db.session)
            db.session.remove()
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert [e["data"]["n"] for e in client.ok(client.get("events"))["data"]] == [0, 1, 2]


@pytest.mark.config(REDIS_URL=None)
def test_without_redis_the_serving_process_ticker_numbers_events(app, client):
    """The embedded mode: no worker, the relay sweep runs on the serving process's ticker."""
    from couponsvc.jobs import runner

    with app.app_context():
        emit(db.session, "ping", merchant_id=None, data={"embedded": True})
        db.session.commit()
    assert client.ok(client.get("events"))["data"] == []
    jobs = runner(app)
    jobs.start_periodic()
    try:
        deadline = time.monotonic() + 20  # watched in the database: no request numbers them
        while time.monotonic() < deadline:
            with app.app_context():
                left = unpositioned_count(db.session)
                db.session.remove()
            if not left:
                break
            time.sleep(0.05)
    finally:
        jobs._ticker.stop()
        jobs._ticker.join()
        jobs.wait_idle()
    assert left == 0
    assert [e["data"] for e in client.ok(client.get("events"))["data"]] == [{"embedded": True}]


def test_a_batch_of_events_takes_one_position_each_in_seq_order(app):
    """The sequencer draws one number per event it numbers (no number drawn again for each
    row of a join), in `seq` order, whatever join PostgreSQL picks: a nested loop, which
    statistics taken while few events wait for their number make the cheapest-looking,
    is forced here, without a Materialize over its inner side."""
    with app.app_context():
        for n in range(40):
            emit(db.session, "ping", merchant_id=None, data={"n": n})
        db.session.commit()
        _number_all(nested_loop=True)
        rows, _ = read_events(db.session, merchant_id=None, after=None, type_=None, limit=100)
        assert [row.data["n"] for row in rows] == list(range(40))
        positions = [row.position for row in rows]
        assert positions == list(range(positions[0], positions[0] + 40))
        assert [row.seq for row in rows] == sorted(row.seq for row in rows)


def _number_all(nested_loop: bool = False) -> None:
    """Number every event written (other writers of the cluster may delay it a while);
    `nested_loop`: with the plans that would number the batch again for each row."""
    for _ in range(400):
        if nested_loop and db.engine.dialect.name == "postgresql":
            db.session.execute(text("SET LOCAL enable_hashjoin = off"))
            db.session.execute(text("SET LOCAL enable_mergejoin = off"))
            db.session.execute(text("SET LOCAL enable_material = off"))
        assign_positions(db.session)
        db.session.commit()
        if not unpositioned_count(db.session):
            return
        time.sleep(0.05)
