"""The data of coupon events, stated once: as a dict in Python, as JSON built in SQL.

Every coupon event (`coupon.redeemed`, `coupon.redemption_reversed`, `coupon.voided`)
carries `merchant_id` and a `coupon` object; `data.coupon.seq` grows with every change
of the coupon, so a receiver can drop a late, older one. The SQL forms build the same
JSON inside a statement (`json_build_object` on PostgreSQL, `json_object` on SQLite),
for set-based inserts: the voided coupons of a campaign, the redeem statement.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Text, cast, literal, literal_column
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.functions import GenericFunction
from sqlalchemy.types import JSON

COUPON_FIELDS = ("code", "campaign_id", "order_id", "uses_left", "seq")


def coupon(*, code: str, campaign_id: str, order_id: str | None, uses_left: int, seq: int,
           status: str | None = None) -> dict[str, Any]:
    """`data.coupon`: the coupon as it is after the change (`status` when the event sets one)."""
    data = {"code": code, "campaign_id": campaign_id, "order_id": order_id, "uses_left": uses_left, "seq": seq}
    if status is not None:
        data["status"] = status
    return data


def voided(*, merchant_id: str, coupon_data: dict[str, Any], reason: str) -> dict[str, Any]:
    """The data of `coupon.voided`."""
    return {"merchant_id": merchant_id, "coupon": coupon_data, "reason": reason}


REDEMPTION_FIELDS = ("id", "store_id", "uses", "redeemed_at", "device_id", "scanned_at", "uploaded_at")


def redemption(*, id: str, store_id: str, uses: int, redeemed_at: str,  # noqa: A002
               device_id: str | None, scanned_at: str, uploaded_at: str | None) -> dict[str, Any]:
    """`data.redemption` of `coupon.redeemed`: what the till's request decided. `redeemed_at`
    is when couponsvc recorded it, `scanned_at` when the till scanned the coupon (the same
    moment online), `uploaded_at` when an offline scan was uploaded (None online)."""
    return {"id": id, "store_id": store_id, "uses": uses, "redeemed_at": redeemed_at,
            "device_id": device_id, "scanned_at": scanned_at, "uploaded_at": uploaded_at}


def redeemed(row, redemption_data: dict[str, Any]) -> dict[str, Any]:
    """The data of `coupon.redeemed` from the redeemed coupon `row` (its `COUPON_FIELDS`,
    `merchant_id`, and its campaign's `title`, `price`, `currency`)."""
    return {
        "merchant_id": row.merchant_id,
        "coupon": coupon(**{name: getattr(row, name) for name in COUPON_FIELDS}),
        "redemption": redemption_data,
        "campaign": {"id": row.campaign_id, "title": row.title, "price": row.price,
                     "currency": row.currency},
    }


class json_object(GenericFunction):  # noqa: N801 (SQL function names are lower case)
    """`json_object(k1, v1, k2, v2, ...)`: a JSON object built in SQL on either backend."""

    type = JSON()
    inherit_cache = True


@compiles(json_object, "postgresql")
def _json_build_object(element, compiler, **kw):
    return f"json_build_object({compiler.process(element.clauses, **kw)})"


def _pairs(values: dict[str, Any]) -> list[Any]:
    pairs: list[Any] = []
    for key, value in values.items():
        # keys are this module's constants, written into the SQL; values bound, typed
        pairs += [literal_column(f"'{key}'"),
                  value if isinstance(value, ColumnElement) else cast(literal(value), Text)]
    return pairs


def coupon_sql(columns, *, status: str | ColumnElement | None = None) -> json_object:
    """`data.coupon` built in SQL from `columns` (anything with `code`, `campaign_id`,
    `order_id`, `uses_left`, `seq` attributes: a table's or a CTE's `.c`)."""
    values: dict[str, Any] = {name: getattr(columns, name) for name in COUPON_FIELDS}
    if status is not None:
        values["status"] = status
    return json_object(*_pairs(values))


def redemption_sql(**values: ColumnElement | str | None) -> json_object:
    """`data.redemption` built in SQL (the fields of `redemption`, `REDEMPTION_FIELDS`)."""
    return json_object(*_pairs({name: values[name] for name in REDEMPTION_FIELDS}))


def redeemed_sql(columns, redemption_data: ColumnElement) -> json_object:
    """The data of `coupon.redeemed` built in SQL from the redeemed row's `columns`
    (those of `redeemed`): the same JSON as `redeemed`."""
    return json_object(*_pairs({
        "merchant_id": columns.merchant_id,
        "coupon": coupon_sql(columns),
        "redemption": redemption_data,
        "campaign": json_object(*_pairs({"id": columns.campaign_id, "title": columns.title,
                                         "price": columns.price, "currency": columns.currency})),
    }))


def voided_sql(columns, *, reason: str | ColumnElement) -> json_object:
    """The data of `coupon.voided` built in SQL from the voided coupon's `columns`
    (those of `coupon_sql`, and `merchant_id`)."""
    return json_object(*_pairs({"merchant_id": columns.merchant_id,
                                "coupon": coupon_sql(columns, status="voided"), "reason": reason}))
