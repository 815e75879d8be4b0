"""Schemas shared by every resource: problems, pagination, money, times."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC

from marshmallow import INCLUDE, Schema, ValidationError, fields, pre_load, validate

from ...domain_error import N_
from ...stored_text import storable


class InputSchema(Schema):
    """Base of every request schema: refuse text that no column can store, field by field."""

    @pre_load
    def _refuse_unstorable_text(self, data, **kwargs):
        if isinstance(data, Mapping):
            bad = {str(name): ["Contains a character that cannot be stored (NUL or a lone surrogate)."]
                   for name, value in data.items() if not _all_storable(value)}
            if bad:
                raise ValidationError(bad)
        return data


def _all_storable(value) -> bool:
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, Mapping):
        return all(_all_storable(k) and _all_storable(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_all_storable(item) for item in value)
    return True


def _member(field, description: str):
    field.metadata["description"] = description
    return field


class ProblemSchema(Schema):
    """RFC 9457 problem details; `code` is the stable machine code (`domain_error.CODES`).

    A refusal carries further members a client can act on; the common ones are listed,
    and any other is allowed (`additionalProperties`), as RFC 9457 allows extensions.
    """

    class Meta:
        unknown = INCLUDE  # documented as additionalProperties: true

    type = _member(fields.Str(required=True), "A URL naming the code; its page says what to do")
    title = _member(fields.Str(required=True), "The code's title, the same for every answer")
    status = _member(fields.Int(required=True), "The HTTP status")
    detail = _member(fields.Str(required=True), "What went wrong with this request, for a person")
    code = _member(fields.Str(required=True), "The stable machine code; test this, never the text")
    errors = _member(fields.Dict(keys=fields.Str(), values=fields.Raw()),
                     "validation_error: the messages of each invalid field")
    roles = _member(fields.List(fields.Str()), "forbidden: the roles that may do it")
    bought = _member(fields.Int(), "customer_limit_reached: coupons this customer already has")
    limit = _member(fields.Int(), "customer_limit_reached: the most one customer may buy")
    remaining = _member(fields.Int(), "coupons still on sale when fewer than asked are left")
    redeemed_at = _member(fields.Str(), "coupon_already_redeemed: when (UTC, RFC 3339)")
    store_id = _member(fields.Str(allow_none=True), "coupon_already_redeemed: where")
    uses_left = _member(fields.Int(), "insufficient_uses: the uses the coupon still has")
    valid_from = _member(fields.Str(), "coupon_not_yet_valid: from when (RFC 3339)")
    valid_until = _member(fields.Str(), "coupon_expired: until when it was valid (RFC 3339)")
    voided_at = _member(fields.Str(allow_none=True), "coupon_voided: when")
    window = _member(fields.Int(allow_none=True), "reversal_window_closed: the window, in seconds")


class ListArgs(InputSchema):
    limit = fields.Int(load_default=50, validate=validate.Range(1, 500))
    after = fields.Str(load_default=None, validate=validate.Length(max=100))


def Money(**kwargs):
    """Integer minor units (3990 = 39.90)."""
    return fields.Int(strict=True, validate=validate.Range(0, 10**12), **kwargs)


class Time(fields.AwareDateTime):
    """RFC 3339 with an offset, the one time field of every request; a time without an
    offset is refused with a sentence that says how to fix it."""

    default_error_messages = {
        "invalid": N_("Not a valid time: send RFC 3339, e.g. 2026-12-01T09:00:00+08:00."),
        "invalid_awareness": N_("This time has no UTC offset: add a UTC offset, e.g. +08:00 "
                        "(2026-12-01T09:00:00+08:00)."),
        "out_of_range": N_("This time is out of range: send a year between 1900 and 9999."),
    }

    def __init__(self, **kwargs) -> None:
        super().__init__(format="iso", **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:  # a time whose UTC value leaves datetime's years 1-9999 cannot be stored
            in_utc = moment.astimezone(UTC)
        except OverflowError:
            raise self.make_error("out_of_range") from None
        if not 1900 <= in_utc.year <= 9999:
            raise self.make_error("out_of_range")
        return moment


def Text(maximum: int, **kwargs):
    return fields.Str(validate=validate.Length(max=maximum), **kwargs)


def Name(maximum: int = 200, **kwargs):
    return fields.Str(validate=validate.Length(min=1, max=maximum), **kwargs)


def page_schema(item: type[Schema], name: str) -> type[Schema]:
    return Schema.from_dict({
        "data": fields.List(fields.Nested(item)),
        "next": fields.Str(allow_none=True, metadata={"description": "cursor for ?after=, or null"}),
    }, name=name)
