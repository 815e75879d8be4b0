"""monthly partitions of redemptions, redemption_attempts, events and deliveries (PostgreSQL)

Each of the four tables becomes a table partitioned BY RANGE of its time column, one
partition per calendar month in UTC (`<table>_pYYYYMM`) and a DEFAULT partition
(`<table>_default`) for a row of a month that has no partition yet:

    redemptions          redeemed_at   when couponsvc recorded the redemption
    redemption_attempts  created_at
    events               created_at
    deliveries           created_at    the time of the delivery's event (see below)

The rows are copied: a partitioned table is created under the name `<table>_partitioned`
with the columns and defaults of the old one, with a partition for every month that holds
a row of any of the four tables and for the current month and the three after it; the
rows are copied, the old table dropped, the new one renamed, and the constraints and
indexes made again under their old names. The serial sequences (`events_seq_seq`,
`deliveries_id_seq`, `redemption_attempts_id_seq`) and `events_position_seq` are the
same objects before and after, so ids, seqs and positions go on from where they were.
The five tables are locked at the start (ACCESS EXCLUSIVE), so no row written during the
copy can be lost: the migration is run with the service stopped, and takes about the time
of copying the four tables and building their indexes (docs/operations.md).

A PRIMARY KEY or UNIQUE constraint of a partitioned table must hold its partition column.
What each constraint becomes, and what still guarantees what the code relies on:

- `events_pkey (seq)` → `(seq, created_at)`. `seq` is unique because only its sequence
  fills it; every reader and `session.get(Event, seq)` still finds one row.
- `events_id_key UNIQUE (id)` → the index `ix_events_id (id)`, not unique. Event ids are
  made by `ids.new_id` (time and 80 random bits) or `emit_from` (a batch prefix and 64
  random bits); no code inserts an id it did not just make, and nothing relied on the
  constraint to refuse one (no ON CONFLICT on events).
- `events_position_key UNIQUE (position)` → `ix_events_position (position) WHERE position
  IS NOT NULL`, not unique. The one writer of `position` is `outbox.positions.
  assign_positions`, under a transaction-scoped advisory lock, from `nextval(
  'events_position_seq')`, which never gives a number twice: `GET /events` cursors stay
  unique. The index now holds only numbered events: every query by position filters on
  `position IS NOT NULL` or a position greater than a cursor (`outbox/feed.py`), and
  the events not yet numbered are found through `ix_events_unpositioned` (kept).
- `ix_events_merchant (merchant_id, position)` → the same `WHERE position IS NOT NULL`:
  only `read_events` uses it, always for numbered events. A new event (position NULL)
  now adds no entry to either index; the relay's UPDATE adds it once numbered.
  Likewise `ix_attempts_code` now holds only the refused attempts that name a coupon: it
  is read for one coupon's attempts (`coupon_code = …`), never for those without one.
- deliveries are partitioned by the time of their event: `delivery_rows`
  (`outbox/fanout.py`) writes the event's `created_at` as the delivery's, so a delivery
  lives in the month of its event, and the two are dropped together. Copied rows take
  their event's `created_at` too (it differed from the delivery's by the time between
  the event's INSERT and its fan-out, in the same transaction).
  `uq_deliveries_event_integration (event_seq, integration_id)` →
  `(event_seq, integration_id, created_at)`: since `created_at` is a function of
  `event_seq`, it refuses exactly what it refused before (one delivery per event and
  integration). `deliveries_pkey (id)` → `(id, created_at)`: `id` is filled only by its
  sequence. `ix_deliveries_public_id UNIQUE (public_id)` → not unique: `public_id` is
  122 random bits made by the database for each row (`random_delivery_id`).
- `redemptions_pkey (id)` → `(id, redeemed_at)`; `redemption_attempts_pkey (id)` →
  `(id, created_at)`. A redemption id is made by `ids.new_id('red')` for that request
  (time and 80 random bits); an attempt's id by its sequence.
- Foreign keys. `deliveries_event_seq_fkey` and `delivery_attempts_delivery_id_fkey`
  are dropped: a foreign key into a partitioned table must name its partition column,
  and keeping one would make every DETACH of an old partition scan the referencing
  table. A delivery is only ever written by the fan-out of its event, in the event's
  own statement or transaction, and an attempt only by the drain holding its delivery;
  retention drops a month's deliveries with that month's events, and deletes their
  attempts first (`couponsvc/partitions.py`). `redemptions_coupon_code_fkey` and
  `deliveries_integration_id_fkey` point at plain tables and are kept.

SQLite keeps its plain tables: this migration does nothing there. The downgrade copies
the rows back into plain tables with the constraints of revision 0014; it fails when the
rows no longer meet them (two rows with one id), which the code never writes.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 05:00:00

"""
from __future__ import annotations

from datetime import UTC, date, datetime

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

MONTHS_AHEAD = 3  # months after the current one given a partition (as couponsvc/partitions.py)

# table: its partition column
KEYS = {"redemptions": "redeemed_at", "redemption_attempts": "created_at",
        "events": "created_at", "deliveries": "created_at"}

# What each table has, partitioned (upgrade) and plain (downgrade, as of revision 0014).
PARTITIONED = {
    "redemptions": [
        "ALTER TABLE redemptions ADD CONSTRAINT redemptions_pkey PRIMARY KEY (id, redeemed_at)",
        "ALTER TABLE redemptions ADD CONSTRAINT redemptions_coupon_code_fkey "
        "FOREIGN KEY (coupon_code) REFERENCES coupons (code)",
    ],
    "redemption_attempts": [
        "ALTER TABLE redemption_attempts ADD CONSTRAINT redemption_attempts_pkey "
        "PRIMARY KEY (id, created_at)",
        "CREATE INDEX ix_attempts_code ON redemption_attempts (coupon_code) "
        "WHERE coupon_code IS NOT NULL",
    ],
    "events": [
        "ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (seq, created_at)",
        "CREATE INDEX ix_events_id ON events (id)",
        "CREATE INDEX ix_events_position ON events (position) WHERE position IS NOT NULL",
        "CREATE INDEX ix_events_merchant ON events (merchant_id, position) "
        "WHERE position IS NOT NULL",
    ],
    "deliveries": [
        "ALTER TABLE deliveries ADD CONSTRAINT deliveries_pkey PRIMARY KEY (id, created_at)",
        "ALTER TABLE deliveries ADD CONSTRAINT uq_deliveries_event_integration "
        "UNIQUE (event_seq, integration_id, created_at)",
        "ALTER TABLE deliveries ADD CONSTRAINT deliveries_integration_id_fkey "
        "FOREIGN KEY (integration_id) REFERENCES integrations (id)",
        "CREATE INDEX ix_deliveries_public_id ON deliveries (public_id)",
    ],
}
PLAIN = {
    "redemptions": [
        "ALTER TABLE redemptions ADD CONSTRAINT redemptions_pkey PRIMARY KEY (id)",
        "ALTER TABLE redemptions ADD CONSTRAINT redemptions_coupon_code_fkey "
        "FOREIGN KEY (coupon_code) REFERENCES coupons (code)",
    ],
    "redemption_attempts": [
        "ALTER TABLE redemption_attempts ADD CONSTRAINT redemption_attempts_pkey PRIMARY KEY (id)",
        "CREATE INDEX ix_attempts_code ON redemption_attempts (coupon_code)",
    ],
    "events": [
        "ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (seq)",
        "ALTER TABLE events ADD CONSTRAINT events_id_key UNIQUE (id)",
        "ALTER TABLE events ADD CONSTRAINT events_position_key UNIQUE (position)",
        "CREATE INDEX ix_events_merchant ON events (merchant_id, position)",
    ],
    "deliveries": [
        "ALTER TABLE deliveries ADD CONSTRAINT deliveries_pkey PRIMARY KEY (id)",
        "ALTER TABLE deliveries ADD CONSTRAINT uq_deliveries_event_integration "
        "UNIQUE (event_seq, integration_id)",
        "ALTER TABLE deliveries ADD CONSTRAINT deliveries_event_seq_fkey "
        "FOREIGN KEY (event_seq) REFERENCES events (seq)",
        "ALTER TABLE deliveries ADD CONSTRAINT deliveries_integration_id_fkey "
        "FOREIGN KEY (integration_id) REFERENCES integrations (id)",
        "CREATE UNIQUE INDEX ix_deliveries_public_id ON deliveries (public_id)",
    ],
}
OPEN = "status IN ('pending', 'failed')"
# The indexes the same in both forms.
COMMON = {
    "redemptions": [
        "CREATE INDEX ix_redemptions_coupon ON redemptions (coupon_code)",
        "CREATE INDEX ix_redemptions_merchant ON redemptions (merchant_id, id)",
        "CREATE INDEX ix_redemptions_campaign ON redemptions (campaign_id, redeemed_at) "
        "INCLUDE (store_id, reversed_at, uses)",
        "CREATE INDEX ix_redemptions_merchant_time ON redemptions (merchant_id, redeemed_at) "
        "INCLUDE (reversed_at)",
    ],
    "redemption_attempts": [
        "CREATE INDEX ix_attempts_merchant ON redemption_attempts (merchant_id, id)",
    ],
    "events": [
        "CREATE INDEX ix_events_unpositioned ON events (seq) WHERE position IS NULL",
    ],
    "deliveries": [
        "CREATE INDEX ix_deliveries_due ON deliveries (status, next_attempt_at)",
        "CREATE INDEX ix_deliveries_integration ON deliveries (integration_id, id)",
        f"CREATE INDEX ix_deliveries_open ON deliveries (integration_id, id) WHERE {OPEN}",
        "CREATE INDEX ix_deliveries_held ON deliveries (integration_id, id) WHERE status = 'held'",
        f"CREATE INDEX ix_deliveries_open_due ON deliveries (integration_id, next_attempt_at) "
        f"WHERE {OPEN}",
    ],
}
# Partitioned: created after events (a delivery takes its event's time); plain: after
# events too (its foreign key); delivery_attempts' key to deliveries only in the plain form.
ORDER = ("redemptions", "redemption_attempts", "events", "deliveries")
ATTEMPTS_FKEY = ("ALTER TABLE delivery_attempts ADD CONSTRAINT delivery_attempts_delivery_id_fkey "
                 "FOREIGN KEY (delivery_id) REFERENCES deliveries (id)")


def _lock(bind) -> None:
    bind.exec_driver_sql("LOCK TABLE redemptions, redemption_attempts, events, deliveries, "
                         "delivery_attempts IN ACCESS EXCLUSIVE MODE")
    bind.exec_driver_sql("ALTER TABLE delivery_attempts "
                         "DROP CONSTRAINT IF EXISTS delivery_attempts_delivery_id_fkey")
    bind.exec_driver_sql("ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_event_seq_fkey")


def _columns(bind, table: str) -> list[str]:
    return list(bind.execute(sa.text(
        "SELECT attname FROM pg_attribute WHERE attrelid = CAST(:t AS regclass) AND attnum > 0 "
        "AND NOT attisdropped ORDER BY attnum"), {"t": table}).scalars())


def _sequences(bind, table: str) -> list[tuple[str, str]]:
    """(sequence, column) of each serial column of `table`."""
    found = []
    for column in _columns(bind, table):
        sequence = bind.execute(sa.text("SELECT pg_get_serial_sequence(:t, :c)"),
                                {"t": table, "c": column}).scalar()
        if sequence:
            found.append((sequence, column))
    return found


def _replace(bind, table: str, new_kind: str, copy_select: str) -> None:
    """Make `<table>_<new_kind>` (its partitions made by the caller beforehand), copy the rows
    with `copy_select`, drop the old table and give the new one its name and sequences."""
    new = f"{table}_{new_kind}"
    columns = ", ".join(f'"{c}"' for c in _columns(bind, table))
    bind.exec_driver_sql(f"INSERT INTO {new} ({columns}) {copy_select}")
    sequences = _sequences(bind, table)
    for sequence, _ in sequences:
        bind.exec_driver_sql(f"ALTER SEQUENCE {sequence} OWNED BY NONE")
    bind.exec_driver_sql(f"DROP TABLE {table}")
    bind.exec_driver_sql(f"ALTER TABLE {new} RENAME TO {table}")
    for sequence, column in sequences:
        bind.exec_driver_sql(f"ALTER SEQUENCE {sequence} OWNED BY {table}.{column}")


def _months(bind) -> list[date]:
    """Every month holding a row of any of the four tables, and the current month and
    `MONTHS_AHEAD` after it."""
    found: set[date] = set()
    for table, key in KEYS.items():
        found.update(moment.date() for moment in bind.execute(sa.text(
            f"SELECT DISTINCT date_trunc('month', {key} AT TIME ZONE 'UTC') FROM {table}")).scalars())
    today = datetime.now(UTC).date().replace(day=1)
    found.update(_add_months(today, n) for n in range(MONTHS_AHEAD + 1))
    return sorted(found)


def _add_months(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def _bound(month: date) -> str:
    return f"'{month.isoformat()} 00:00:00+00'"


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    _lock(bind)
    months = _months(bind)
    for table in ORDER:
        key = KEYS[table]
        new = f"{table}_partitioned"
        bind.exec_driver_sql(f"CREATE TABLE {new} (LIKE {table} INCLUDING DEFAULTS INCLUDING STORAGE) "
                             f"PARTITION BY RANGE ({key})")
        for month in months:
            bind.exec_driver_sql(
                f"CREATE TABLE {table}_p{month:%Y%m} PARTITION OF {new} "
                f"FOR VALUES FROM ({_bound(month)}) TO ({_bound(_add_months(month, 1))})")
        bind.exec_driver_sql(f"CREATE TABLE {table}_default PARTITION OF {new} DEFAULT")
        if table == "deliveries":  # a delivery takes its event's time (events already copied)
            selected = ", ".join(
                "coalesce(e.created_at, d.created_at)" if c == "created_at" else f'd."{c}"'
                for c in _columns(bind, table))
            copy = f"SELECT {selected} FROM deliveries d LEFT JOIN events e ON e.seq = d.event_seq"
        else:
            copy = f"SELECT * FROM {table}"
        _replace(bind, table, "partitioned", copy)
        for statement in PARTITIONED[table] + COMMON[table]:
            bind.exec_driver_sql(statement)
        bind.exec_driver_sql(f"ANALYZE {table}")


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    _lock(bind)
    for table in ORDER:
        bind.exec_driver_sql(f"CREATE TABLE {table}_plain (LIKE {table} INCLUDING DEFAULTS INCLUDING STORAGE)")
        _replace(bind, table, "plain", f"SELECT * FROM {table}")
        for statement in PLAIN[table] + COMMON[table]:
            bind.exec_driver_sql(statement)
        bind.exec_driver_sql(f"ANALYZE {table}")
    bind.exec_driver_sql(ATTEMPTS_FKEY)
