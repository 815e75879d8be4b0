"""Schemas shared by every resource: problems, pagination, money, times."""

from __future__ import annotations

from collections.abc import Mapping

from marshmallow import Schema, ValidationError, fields, pre_load, validate


def storable(text: str) -> bool:
    """Text a database can keep: no NUL character, no lone UTF-16 surrogate."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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


class ProblemSchema(Schema):
    """RFC 9457 problem details; `code` is the stable machine code."""

    type = fields.Str()
    title = fields.Str()
    status = fields.Int()
    detail = fields.Str()
    code = fields.Str()
    errors = fields.Dict(keys=fields.Str(), values=fields.Raw())


class ListArgs(InputSchema):
    limit = fields.Int(load_default=50, validate=validate.Range(1, 500))
    after = fields.Str(load_default=None, validate=validate.Length(max=100))


def Money(**kwargs):
    """Integer minor units (3990 = 39.90)."""
    return fields.Int(strict=True, validate=validate.Range(0, 10**12), **kwargs)


def Time(**kwargs):
    """RFC 3339 with an offset; naive times are refused."""
    return fields.AwareDateTime(format="iso", **kwargs)


def Text(maximum: int, **kwargs):
    return fields.Str(validate=validate.Length(max=maximum), **kwargs)


def Name(maximum: int = 200, **kwargs):
    return fields.Str(validate=validate.Length(min=1, max=maximum), **kwargs)


def page_schema(item: type[Schema], name: str) -> type[Schema]:
    return Schema.from_dict({
        "data": fields.List(fields.Nested(item)),
        "next": fields.Str(allow_none=True, metadata={"description": "cursor for ?after=, or null"}),
    }, name=name)
