"""The registry: built-ins, plus adapters installed as their own distributions."""

import json
import subprocess
import sys
import textwrap

import pytest

from integrations.registry import GROUP, builtin_adapters, describe, load_adapters

from .conformance import assert_conforms

SAMPLE_MODULE = '''
from marshmallow import Schema, fields

from integrations import http


class SampleConfig(Schema):
    url = fields.Url(required=True, require_tld=False)
    token = fields.String(load_default="t", load_only=True)


class SampleAdapter:
    """A CRM adapter that lives in its own distribution, outside the project."""

    name = "sample"
    kind = "erp"
    events = frozenset({"ping", "coupon.redeemed"})
    config_schema = SampleConfig

    def deliver(self, event, config, context):
        settings = SampleConfig().load(config)
        return http.post(context, settings["url"], json=event.envelope())


class Impostor(SampleAdapter):
    name = "webhook"


class Unkind(SampleAdapter):
    name = "unkind"
    kind = "crm"


class Misnamed(SampleAdapter):
    name = "other"
'''


def install(tmp_path, monkeypatch, name, entry_points, module=SAMPLE_MODULE):
    """Lay out an installed distribution (module + dist-info) and put it on sys.path."""
    (tmp_path / f"{name}.py").write_text(module)
    info = tmp_path / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{GROUP}]\n" + "".join(
        f"{point} = {target}\n" for point, target in entry_points.items()))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)


def test_builtins_are_registered():
    adapters = load_adapters()
    assert {name: adapters[name].kind for name in
            ("webhook", "odoo", "wecom", "dingtalk", "mastodon", "discourse", "weibo", "feishu")} == {
        "webhook": "erp", "odoo": "erp", "wecom": "social", "dingtalk": "social",
        "mastodon": "social", "discourse": "social", "weibo": "social", "feishu": "social"}
    builtins = [a.name for a in builtin_adapters()]
    assert builtins == list(adapters)[:len(builtins)]


def test_an_adapter_in_its_own_distribution_is_found(tmp_path, monkeypatch, receiver):
    install(tmp_path, monkeypatch, "thirdparty_adapter",
            {"sample": "thirdparty_adapter:SampleAdapter"})
    adapters = load_adapters()
    assert adapters["sample"].kind == "erp"
    assert describe(adapters["sample"])["events"] == ["coupon.redeemed", "ping"]
    assert_conforms(adapters["sample"], {"url": receiver.url + "/crm"}, receiver)


def test_broken_and_nonconforming_entry_points_are_skipped(tmp_path, monkeypatch, caplog):
    install(tmp_path, monkeypatch, "thirdparty_mixed", {
        "sample": "thirdparty_mixed:SampleAdapter",
        "missing": "thirdparty_mixed:NoSuchAdapter",
        "gone": "thirdparty_no_such_module:Adapter",
        "webhook": "thirdparty_mixed:Impostor",
        "unkind": "thirdparty_mixed:Unkind",
        "misnamed": "thirdparty_mixed:Misnamed",
    })
    adapters = load_adapters()
    assert "sample" in adapters
    assert type(adapters["webhook"]).__module__ == "integrations.webhook"
    assert not {"missing", "gone", "unkind", "misnamed", "other"} & set(adapters)
    logged = caplog.text
    for point in ("missing", "gone", "webhook", "unkind", "misnamed"):
        assert f"entry point {point} =" in logged


def test_an_adapter_raising_at_import_is_skipped(tmp_path, monkeypatch):
    install(tmp_path, monkeypatch, "thirdparty_crash", {"crash": "thirdparty_crash:Adapter"},
            module="raise RuntimeError('plugin bug')\n")
    assert "crash" not in load_adapters()


def test_describe_gives_a_json_schema_without_secrets():
    described = {a.name: describe(a) for a in builtin_adapters()}
    webhook = described["webhook"]["config_schema"]
    assert webhook["required"] == ["url"]
    assert webhook["properties"]["secret"]["writeOnly"] is True
    assert "default" not in webhook["properties"]["secret"]  # never a generated secret
    assert described["wecom"]["config_schema"]["properties"]["locale"]["default"] == "zh"
    assert "integration.disabled" in described["webhook"]["events"]
    json.dumps(described)


def test_the_library_never_imports_the_web_app():
    code = textwrap.dedent("""
        import sys
        import integrations.registry
        integrations.registry.load_adapters()
        bad = sorted(m for m in sys.modules if m.split('.')[0] in ('couponsvc', 'flask'))
        print(bad)
        sys.exit(1 if bad else 0)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=str(__import__("pathlib").Path(__file__).parents[2]))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", ["webhook", "odoo", "wecom", "dingtalk", "mastodon"])
def test_each_builtin_lives_in_a_module_of_its_name(name):
    assert type(load_adapters()[name]).__module__ == f"integrations.{name}"


class _Valid:
    name, kind, events = "x", "erp", frozenset({"ping"})
    config_schema = __import__("marshmallow").Schema

    def deliver(self, event, config, context):
        raise NotImplementedError


@pytest.mark.parametrize(("change", "problem"), [
    ({"name": ""}, "no name"), ({"kind": "crm"}, "kind"),
    ({"events": {"ping"}}, "frozenset"), ({"events": frozenset({"coupon.redeemed"})}, "ping"),
    ({"events": frozenset({"ping", "order.shipped"})}, "unknown events"),
    ({"config_schema": dict}, "marshmallow"), ({"deliver": None}, "deliver")])
def test_conformance_problems_are_named(change, problem):
    from integrations.registry import conformance_problem

    adapter = type("Broken", (_Valid,), change)()
    assert problem in conformance_problem(adapter)
    assert conformance_problem(_Valid()) is None
