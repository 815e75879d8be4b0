"""The redeem's statement run on a connection of the statement pool, through psycopg's
libpq layer (`psycopg.pq`) rather than a cursor.

A cursor's execution is general: it looks the query up among the connection's prepared
statements, counts its executions towards preparing it, makes a transformer for the
parameters and another for the result, and keeps the result for fetching. The redeem's
statement is one of a few known texts, run on connections in autocommit
(`statement_pool.py`), answered by at most one row: here it is prepared once per
connection under a name of its own (`write.Compiled.name`), then executed by name with its
parameters dumped, and its row loaded, by one psycopg `Transformer` per connection. That
saves 9% of the redeem's instructions in the app (docs/benchmarks.md). Both libpq calls let
go of the GIL while they wait for the server, as the cursor's did.

Where the connection does not prepare statements (`COUPONSVC_DB_PREPARE=off`, behind
PgBouncer in transaction mode), the statement is sent whole every time, unnamed, as the
cursor sent it. A prepared statement the server no longer has (a `DISCARD ALL` on the
connection) is prepared again under its name and the statement run once more: it had
not run. Errors
are psycopg's own (`UniqueViolation` and the rest), made from the result as a cursor
makes them; a broken connection then is thrown away by the pool.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg.adapt import PyFormat, Transformer
from psycopg.errors import InvalidSqlStatementName, error_from_result
from psycopg.pq import ConnStatus, ExecStatus
from psycopg.pq.abc import PGresult


class _Session:
    """What one connection keeps between statements, as an attribute of its own (a
    dictionary keyed by connection, even a weak one, kept each connection alive: the
    transformer refers to its connection): its transformer, and the names the server
    knows its prepared statements by, by statement and parameter types (psycopg gives a
    small integer the type `int2`, a larger one `int4`: each set of types is prepared
    apart, as psycopg does)."""

    __slots__ = ("prepared", "transformer")

    def __init__(self, connection: psycopg.Connection) -> None:
        self.transformer = Transformer(connection)
        self.prepared: dict[tuple[bytes, tuple[int, ...]], bytes] = {}


_ATTRIBUTE = "_couponsvc_statements"  # where a connection keeps its _Session


def first_row(connection: psycopg.Connection, name: bytes, query: bytes, params: Sequence[Any],
              make_row: Callable[[Sequence[Any]], Any]) -> Any | None:
    """Run `query` (prepared as `name`) with `params` on `connection`, in autocommit and
    lent to this thread alone; its first row made by `make_row`, or None when it has none."""
    session = getattr(connection, _ATTRIBUTE, None)
    if session is None:  # kept on the connection: it goes when the pool lets the connection go
        session = _Session(connection)
        setattr(connection, _ATTRIBUTE, session)
    transformer = session.transformer
    dumped = transformer.dump_sequence(params, [PyFormat.TEXT] * len(params))
    types = tuple(transformer.types)
    pgconn = connection.pgconn
    if connection.prepare_threshold is None:
        result = pgconn.exec_params(query, dumped, types)
    else:
        known = session.prepared.get((name, types))
        if known is None:  # numbered in the order prepared: a failed PREPARE takes no number
            known = b"%s_%d" % (name, len(session.prepared))
            _prepare(connection, known, query, types)
            session.prepared[name, types] = known
        result = pgconn.exec_prepared(known, dumped)
        if result.status == ExecStatus.FATAL_ERROR and _is_unknown_statement(connection, result):
            _prepare(connection, known, query, types)  # the server forgot it: again, same name
            result = pgconn.exec_prepared(known, dumped)
    if result.status != ExecStatus.TUPLES_OK:
        raise _error(connection, result)
    if not result.ntuples:
        return None
    transformer.set_pgresult(result)
    return transformer.load_row(0, make_row)


def _prepare(connection: psycopg.Connection, name: bytes, query: bytes, types: tuple[int, ...]) -> None:
    result = connection.pgconn.prepare(name, query, types)
    if result.status != ExecStatus.COMMAND_OK:
        raise _error(connection, result)


def _is_unknown_statement(connection: psycopg.Connection, result: PGresult) -> bool:
    return isinstance(_error(connection, result), InvalidSqlStatementName)


def _error(connection: psycopg.Connection, result: PGresult) -> psycopg.Error:
    """The error a cursor would raise for `result`: `OperationalError` when the connection
    is lost (the pool then throws it away), else the error of the result's SQLSTATE."""
    if connection.pgconn.status == ConnStatus.BAD:
        message = connection.pgconn.error_message.decode(errors="replace").strip()
        return psycopg.OperationalError(f"the connection was lost: {message}")
    return error_from_result(result, encoding=connection.info.encoding)
