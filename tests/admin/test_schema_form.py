"""The form drawn from a JSON Schema, and the config read back from what it posts."""

from __future__ import annotations

from couponsvc.admin.schema_form import (
    field_errors,
    form_fields,
    initial_values,
    posted_values,
    read_config,
    shown,
)

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 20, "description": "who"},
        "url": {"type": "string", "format": "url"},
        "count": {"type": "integer", "minimum": 1, "maximum": 9, "default": 3},
        "ratio": {"type": "number"},
        "loud": {"type": "boolean", "default": True},
        "tone": {"type": "string", "enum": ["a", "b"], "default": "a"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "headers": {"type": "object", "additionalProperties": {"type": "string"}, "writeOnly": True},
        "mapping": {"type": "object", "additionalProperties": {"type": "string"}, "default": {"x": "y"}},
        "extra": {"type": "object"},
        "link": {"type": ["string", "null"], "default": None},
        "token": {"type": "string", "writeOnly": True, "x-secret": True},
    },
    "required": ["url", "token"],
}


def by_name():
    return {f.name: f for f in form_fields(SCHEMA)}


def test_each_property_gets_its_kind_and_markers():
    fields = by_name()
    assert {name: f.kind for name, f in fields.items()} == {
        "name": "text", "url": "url", "count": "integer", "ratio": "number", "loud": "boolean",
        "tone": "choice", "tags": "lines", "headers": "pairs", "mapping": "pairs", "extra": "json",
        "link": "text", "token": "text"}
    assert [f.name for f in form_fields(SCHEMA)][:2] == ["url", "token"]  # required ones first
    assert fields["token"].secret and fields["token"].required and fields["headers"].secret
    assert fields["link"].nullable and not fields["name"].nullable
    assert fields["tone"].choices == ("a", "b")
    assert (fields["count"].minimum, fields["count"].maximum, fields["name"].max_length) == (1, 9, 20)
    assert fields["token"].input_name == "config.token"


def test_a_credential_is_never_shown():
    fields = by_name()
    assert shown(fields["token"], "s3cret") == "" and shown(fields["headers"], {"X": "1"}) == ""
    values = initial_values(form_fields(SCHEMA), {"token": "s3cret", "name": "n", "tags": ["a", "b"],
                                                  "mapping": {"k": "v"}, "loud": False})
    assert values["token"] == "" and values["name"] == "n"
    assert values["tags"] == "a\nb" and values["mapping"] == "k: v" and values["loud"] == ""
    again = posted_values(form_fields(SCHEMA), {"config.token": "typed", "config.name": "typed too"})
    assert again["token"] == "" and again["name"] == "typed too"


def test_defaults_fill_a_new_form():
    values = initial_values(form_fields(SCHEMA), None)
    assert values["count"] == "3" and values["loud"] == "true" and values["tone"] == "a"
    assert values["mapping"] == "x: y" and values["link"] == ""


def test_what_is_posted_is_read_back():
    config, errors = read_config(form_fields(SCHEMA), {
        "config.url": " https://erp.example.cn/hook ", "config.count": "7", "config.ratio": "0.5",
        "config.loud": "1", "config.tone": "b", "config.tags": "a\n\n b \n", "config.headers": "X-Token: 1\nX-B:2",
        "config.extra": '{"k": [1]}', "config.token": " t ", "config.name": ""}, editing=False)
    assert errors == {}
    assert config == {"url": "https://erp.example.cn/hook", "count": 7, "ratio": 0.5, "loud": True, "tone": "b",
                      "tags": ["a", "b"], "headers": {"X-Token": "1", "X-B": "2"}, "extra": {"k": [1]},
                      "token": "t"}  # spaces pasted around a token dropped; empty inputs left out


def test_a_number_the_form_cannot_read_is_left_to_the_schema():
    config, errors = read_config(form_fields(SCHEMA), {"config.count": "seven", "config.loud": ""}, editing=False)
    assert config == {"count": "seven", "loud": False} and errors == {}


def test_unreadable_pairs_and_json_are_told_by_field():
    config, errors = read_config(form_fields(SCHEMA), {"config.mapping": "ok: 1\nno colon",
                                                       "config.extra": "{nope"}, editing=False)
    assert errors == {"config.mapping": ["Line 2 is not “name: value”."], "config.extra": ["Not valid JSON."]}


def test_editing_empties_a_nullable_field_and_keeps_blank_credentials():
    config, _ = read_config(form_fields(SCHEMA), {"config.link": "", "config.token": "", "config.name": ""},
                            editing=True)
    assert config == {"link": None, "loud": False}


def test_domain_errors_are_flattened_to_the_inputs():
    assert field_errors({"config": {"url": ["Not a valid URL."], "headers": {"X": ["bad"]}},
                         "events": ["Not handled."], "_schema": ["No."]}) == {
        "config.url": ["Not a valid URL."], "config.headers": ["X: bad"], "events": ["Not handled."],
        "_schema": ["No."]}
