"""The one gettext catalogue (couponsvc/translations/): complete in Chinese, in step with
the code, its placeholders kept; and the language an answer is given in."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from flask_babel import refresh

from couponsvc.domain_error import CODES, say, say_n
from couponsvc.i18n import TRANSLATIONS, translate

ROOT = Path(__file__).resolve().parents[1]
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def _catalog(path: Path):
    with path.open("rb") as f:
        return read_po(f)


def _ids(catalog) -> set[str]:
    return {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id}


def test_every_message_is_translated_to_chinese_with_its_placeholders():
    for message in _catalog(TRANSLATIONS / "zh/LC_MESSAGES/messages.po"):
        if not message.id:
            continue
        ids = [message.id] if isinstance(message.id, str) else list(message.id)
        strings = [message.string] if isinstance(message.string, str) else list(message.string)
        assert all(strings) and not message.fuzzy, message.id
        wanted = set(PLACEHOLDER.findall(ids[-1])) | ({"num"} if len(ids) > 1 else set())
        for string in strings:
            assert set(PLACEHOLDER.findall(string)) <= wanted, (message.id, string)
            assert set(PLACEHOLDER.findall(string)) >= wanted - {"num"}, (message.id, string)


def test_the_catalogue_holds_every_marked_string_of_the_code(tmp_path):
    """Fails when a `say`, `say_n` or `N_` was added without ./scripts/translations update."""
    fresh = tmp_path / "messages.pot"
    subprocess.run([str(Path(sys.executable).with_name("pybabel")), "-q", "extract", "-F", "babel.cfg",
                    "-k", "N_", "-k", "say", "-k", "say_n:1,2", "-o", str(fresh), "."],
                   cwd=ROOT, check=True)
    missing = _ids(_catalog(fresh)) - _ids(_catalog(TRANSLATIONS / "zh/LC_MESSAGES/messages.po"))
    assert not missing, "run ./scripts/translations update and translate: " + repr(sorted(missing))


def test_every_title_is_in_the_catalogue():
    ids = _ids(_catalog(TRANSLATIONS / "zh/LC_MESSAGES/messages.po"))
    assert {title for _, title in CODES.values()} <= ids


@pytest.mark.parametrize(("accept", "language"), [
    (None, "en"), ("zh", "zh"), ("zh-CN", "zh"), ("zh-Hans-CN, en;q=0.1", "zh"),
    ("en-GB, zh;q=0.5", "en"), ("fr", "en"), ("*", "en"),
])
def test_the_language_follows_accept_language(app, accept, language):
    headers = {"Accept-Language": accept} if accept else {}
    with app.test_request_context("/api/v1/merchants", headers=headers):
        refresh()  # the locale is kept per app context, which the test's app holds on to
        assert translate(say("valid until %(time)s", time="T")) == (
            "valid until T" if language == "en" else "有效期至 T")


def test_plurals_follow_the_number(app):
    with app.test_request_context("/api/v1/merchants"):
        refresh()
        assert [translate(say_n("%(num)d coupon left, %(asked)d asked",
                                "%(num)d coupons left, %(asked)d asked", n, asked=3))
                for n in (1, 2)] == ["1 coupon left, 3 asked", "2 coupons left, 3 asked"]
    with app.test_request_context(headers={"Accept-Language": "zh"}):
        refresh()
        assert translate(say_n("%(num)d coupon left, %(asked)d asked",
                               "%(num)d coupons left, %(asked)d asked", 1, asked=3)) == "还剩 1 张券，要了 3 张"


def test_a_sentence_is_its_english_text_where_a_string_is_expected():
    assert str(say_n("%(num)d use left, %(asked)d asked", "%(num)d uses left, %(asked)d asked",
                     1, asked=2)) == "1 use left, 2 asked"
