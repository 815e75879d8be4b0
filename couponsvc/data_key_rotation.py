"""Re-encrypt what the data keys protect under the first one (`couponsvc rotate-data-keys`).

Two tables hold encrypted values: `integrations.credentials` (credentials split from
the config: `integration_credentials`) and the stored answers of `idempotency_keys`.
In the first, credentials an older version left in `config` in the clear are moved
out and encrypted too; in the second, every text column whose value carries the
`fernet:` prefix is re-encrypted, a batch of rows per transaction.
"""

from __future__ import annotations

from sqlalchemy import String, Table, or_, select, tuple_, update
from sqlalchemy.orm import Session

from integrations.adapter import Adapter

from .data_keys import PREFIX, DataKeys, is_encrypted
from .integration_credentials import reseal_all
from .models import IdempotencyRecord

BATCH = 500


def rotate_data_keys(session: Session, adapters: dict[str, Adapter], keys: DataKeys) -> dict[str, int]:
    """Values rewritten under the first key, by table; commits as it goes."""
    counts = {"integrations": reseal_all(session, adapters, keys)}
    session.commit()
    table = IdempotencyRecord.__table__
    counts[table.name] = rotate_table(session, table, keys)
    return counts


def rotate_table(session: Session, table: Table, keys: DataKeys) -> int:
    """Re-encrypt every `fernet:` value of `table`'s text columns; the values rewritten."""
    key_columns = list(table.primary_key.columns)
    texts = [column for column in table.columns
             if isinstance(column.type, String) and not column.primary_key]
    encrypted = or_(*(column.like(PREFIX + "%") for column in texts))
    rewritten, last = 0, None
    while True:
        query = select(*key_columns, *texts).where(encrypted).order_by(*key_columns).limit(BATCH)
        if last is not None:
            query = query.where(tuple_(*key_columns) > tuple_(*last))
        rows = session.execute(query).all()
        for row in rows:
            values = {column.name: keys.rotate(row._mapping[column])
                      for column in texts if is_encrypted(row._mapping[column])}
            session.execute(update(table).where(*(column == row._mapping[column] for column in key_columns))
                            .values(values))
            rewritten += len(values)
        session.commit()
        if len(rows) < BATCH:
            return rewritten
        last = [rows[-1]._mapping[column] for column in key_columns]
