"""Schemas shared by every resource: problems, pagination, money, times."""

from __future__ import annotations

from marshmallow import Schema, fields, validate


class ProblemSchema(Schema):
    """RFC 9457 problem details; `code` is the stable machine code."""

    type = fields.Str()
    title = fields.Str()
    status = fields.Int()
    detail = fields.Str()
    code = fields.Str()
    errors = fields.Dict(keys=fields.Str(), values=fields.Raw())


class ListArgs(Schema):
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
