"""Monthly partitions of the tables every redeem writes (PostgreSQL; migration 0015).

`redemptions` (by `redeemed_at`), `redemption_attempts`, `events` and `deliveries` (by
`created_at`; a delivery's is its event's) have one partition per calendar month in UTC,
`<table>_pYYYYMM`, and a DEFAULT partition, `<table>_default`, for a row of a month that
has none. This module keeps them:

- `create_ahead` gives the current month and the `MONTHS_AHEAD` after it a partition in
  every table. A row that reached DEFAULT because its month had none (the task did not
  run for months) moves into the new partition, in the transaction that attaches it.
- `drop_older` detaches and drops the partitions of months wholly before the retention
  (`COUPONSVC_RETENTION_MONTHS` whole months before the current one; 0 keeps all), never
  the current month's. A month's events and deliveries go together, with the delivery
  attempts of those deliveries, and only when none of its deliveries is still open
  (pending, failed or held): such a month is kept, logged, and tried again at the next
  run. Redemptions and refused attempts of a month go on their own.

Only partitions with these names are touched; DEFAULT is never emptied by retention.
Every step runs in its own short transaction with a lock timeout: a DETACH needs the
parent table to itself for a moment, and would otherwise queue the redeems behind a
long query. And every step takes its locks first, in the order a redeem takes them
(`_lock_in_the_redeems_order`): making, detaching or dropping a partition also locks the
tables its foreign keys reference (`coupons` for `redemptions`), after the parent when
left to PostgreSQL, while a redeem holds `coupons` (its UPDATE) before it asks for
`redemptions` (its INSERT); the two deadlocked, and PostgreSQL could end the redeem.
On SQLite (plain tables) all of this does nothing.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

# table: its partition column
TABLES = {"redemptions": "redeemed_at", "redemption_attempts": "created_at",
          "events": "created_at", "deliveries": "created_at"}
MONTHS_AHEAD = 3
# The order a redeem's one statement locks the tables it writes (write.py: the coupon,
# then its redemption, its event, its deliveries); integrations, which it only reads,
# before deliveries, as the admin's enabling of an integration writes them.
LOCK_ORDER = ("coupons", "redemptions", "redemption_attempts", "events", "integrations", "deliveries")
KEPT_OPEN = ("pending", "failed", "held")  # a delivery that may still be sent
LOCK_TIMEOUT = "5s"


@dataclass
class Report:
    """What a run did: partitions created, rows moved out of DEFAULT into them,
    partitions dropped, and what it left for the next run with the reason (a month kept
    past the retention, a step whose lock was not granted in time)."""

    created: list[str] = field(default_factory=list)
    moved: int = 0
    dropped: list[str] = field(default_factory=list)
    kept: list[tuple[str, str]] = field(default_factory=list)


def applies(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def month_of(moment: datetime) -> date:
    return moment.astimezone(UTC).date().replace(day=1)


def add_months(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def partition_name(table: str, month: date) -> str:
    return f"{table}_p{month:%Y%m}"


def _bound(month: date) -> str:
    return f"'{month.isoformat()} 00:00:00+00'"


def months(session: Session, table: str) -> dict[date, str]:
    """The months that have a partition of `table`, and its name."""
    pattern = re.compile(rf"^{table}_p(\d{{4}})(\d{{2}})$")
    names = session.execute(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = CAST(:table AS regclass)"), {"table": table}).scalars()
    found = {}
    for name in names:
        matched = pattern.match(name)
        if matched:
            found[date(int(matched[1]), int(matched[2]), 1)] = name
    return found


def create_ahead(session: Session, now: datetime, report: Report, ahead: int = MONTHS_AHEAD) -> None:
    """Give this month and the `ahead` next ones a partition in every table."""
    wanted = [add_months(month_of(now), n) for n in range(ahead + 1)]
    for table in TABLES:
        have = months(session, table)
        session.rollback()
        for month in wanted:
            if month not in have:
                _step(session, report, partition_name(table, month), lambda m=month, t=table:
                      create_partition(session, t, m, report))


def create_partition(session: Session, table: str, month: date, report: Report) -> None:
    """A partition of `table` for `month`, with the rows DEFAULT holds of it; the caller commits."""
    key, name = TABLES[table], partition_name(table, month)
    lower, upper = _bound(month), _bound(add_months(month, 1))
    in_range = f"{key} >= {lower} AND {key} < {upper}"
    _lock_in_the_redeems_order(session, {table}, referenced="SHARE ROW EXCLUSIVE")  # the keys' triggers
    strays = session.execute(text(f"SELECT count(*) FROM {table}_default WHERE {in_range}")).scalar()
    if not strays:
        session.execute(text(f"CREATE TABLE {name} PARTITION OF {table} "
                             f"FOR VALUES FROM ({lower}) TO ({upper})"))
    else:  # move them: a partition cannot be made while DEFAULT holds rows of its range
        session.execute(text(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING STORAGE)"))
        moved = session.execute(text(
            f"WITH moved AS (DELETE FROM {table}_default WHERE {in_range} RETURNING *) "
            f"INSERT INTO {name} SELECT * FROM moved")).rowcount
        session.execute(text(f"ALTER TABLE {table} ATTACH PARTITION {name} "
                             f"FOR VALUES FROM ({lower}) TO ({upper})"))
        report.moved += moved
        log.info("partition %s: %d row(s) moved in from %s_default", name, moved, table)
    report.created.append(name)


def drop_older(session: Session, now: datetime, retention_months: int, report: Report) -> None:
    """Detach and drop the partitions of months wholly before the retention (see above)."""
    if retention_months <= 0:
        return
    first_kept = add_months(month_of(now), -retention_months)
    _drop_left_over(session, first_kept, report)
    events, deliveries = months(session, "events"), months(session, "deliveries")
    simple = {table: months(session, table) for table in ("redemptions", "redemption_attempts")}
    session.rollback()
    for month in sorted(set(events) | set(deliveries)):
        if month < first_kept:
            _drop_outbox_month(session, month, report)
    for table, found in simple.items():
        for month, name in sorted(found.items()):
            if month < first_kept and _step(session, report, name,
                                            lambda t=table, n=name: _detach_and_drop(session, t, n)):
                report.dropped.append(name)


def _drop_outbox_month(session: Session, month: date, report: Report) -> None:
    """A month's deliveries and events, when none of its deliveries is open: detached in one
    transaction (the check made on the detached partition, so no delivery can reopen
    between them), then their attempts deleted and both dropped."""
    deliveries, events = partition_name("deliveries", month), partition_name("events", month)
    parents = {"deliveries": deliveries, "events": events}
    detached = {}

    def detach() -> None:
        _lock_in_the_redeems_order(session, set(parents), referenced="SHARE ROW EXCLUSIVE")
        for parent, name in parents.items():
            if name in months(session, parent).values():
                session.execute(text(f"ALTER TABLE {parent} DETACH PARTITION {name}"))
                detached[parent] = name
        if "deliveries" in detached:
            still_open = session.execute(text(
                f"SELECT count(*) FROM {deliveries} WHERE status IN ({_quoted(KEPT_OPEN)})")).scalar()
            if still_open:
                raise _Kept(f"holds {still_open} open deliveries (pending, failed or held)")

    if not _step(session, report, f"{deliveries}, {events}", detach):
        return
    if "deliveries" in detached:
        session.execute(text(f"DELETE FROM delivery_attempts WHERE delivery_id IN (SELECT id FROM {deliveries})"))
    for name in detached.values():
        session.execute(text(f"DROP TABLE {name}"))
    session.commit()
    report.dropped.extend(detached.values())
    log.info("retention: dropped %s", ", ".join(detached.values()))


def _drop_left_over(session: Session, first_kept: date, report: Report) -> None:
    """Drop what an earlier run detached but did not drop (it stopped between the two):
    tables named as partitions of a month before the retention, no longer partitions."""
    for table in TABLES:
        names = session.execute(text(
            "SELECT relname FROM pg_class WHERE relkind = 'r' AND NOT relispartition "
            "AND relnamespace = CAST(current_schema() AS regnamespace) AND relname ~ :pattern"),
            {"pattern": rf"^{table}_p[0-9]{{6}}$"}).scalars().all()
        for name in sorted(names):
            month = date(int(name[-6:-2]), int(name[-2:]), 1)
            if month >= first_kept:
                continue
            if table == "deliveries":
                session.execute(text(
                    f"DELETE FROM delivery_attempts WHERE delivery_id IN (SELECT id FROM {name})"))
            session.execute(text(f"DROP TABLE {name}"))
            session.commit()
            report.dropped.append(name)
            log.info("retention: dropped %s (detached by an earlier run)", name)


def _detach_and_drop(session: Session, table: str, name: str) -> None:
    _lock_in_the_redeems_order(session, {table}, referenced="ACCESS EXCLUSIVE")  # DROP drops the keys
    session.execute(text(f"ALTER TABLE {table} DETACH PARTITION {name}"))
    session.execute(text(f"DROP TABLE {name}"))
    log.info("retention: dropped %s", name)


class _Kept(Exception):
    """A partition that must stay: its reason."""


def _step(session: Session, report: Report, what: str, work) -> bool:
    """Run `work` in a transaction of its own under the lock timeout; True when committed.
    A lock not granted in time, a database error, or a reason to keep rolls it back and is
    reported."""
    try:
        session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
        work()
    except _Kept as reason:
        session.rollback()
        report.kept.append((what, str(reason)))
        log.warning("retention: %s kept: %s", what, reason)
        return False
    except DBAPIError as error:  # lock_timeout (busy), or a row of the month reached DEFAULT
        session.rollback()      # since it was counted: the next run tries again
        report.kept.append((what, f"not done now: {error.orig}"))
        log.warning("partitions: %s not done now: %s", what, error.orig)
        return False
    session.commit()
    return True


def _lock_in_the_redeems_order(session: Session, parents: set[str], *, referenced: str) -> None:
    """Lock `parents` (ACCESS EXCLUSIVE, as their partitions' DDL does) and the tables
    their foreign keys reference (`referenced`, the mode the DDL takes them in), all in
    `LOCK_ORDER`, a table not in it first: never one the redeem holds while it waits for
    one held here."""
    found = session.execute(text(
        "SELECT DISTINCT confrelid::regclass::text FROM pg_constraint "
        "WHERE contype = 'f' AND conrelid = ANY(CAST(:parents AS regclass[]))"),
        {"parents": sorted(parents)}).scalars().all()
    modes = {name: referenced for name in found if name not in parents}
    modes.update(dict.fromkeys(parents, "ACCESS EXCLUSIVE"))
    rank = {name: position for position, name in enumerate(LOCK_ORDER)}
    for name in sorted(modes, key=lambda name: (rank.get(name, -1), name)):
        session.execute(text(f"LOCK TABLE {name} IN {modes[name]} MODE"))


def _quoted(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{value}'" for value in values)
