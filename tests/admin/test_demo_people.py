"""The demo prints an operator and a manager of the admin pages, with fresh passwords."""

from __future__ import annotations

from .conftest import pages


def demo_people(app) -> dict[str, tuple[str, str]]:
    result = app.test_cli_runner().invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    found = {}
    for line in result.stdout.splitlines():
        words = line.split()
        if len(words) > 3 and words[0] in ("operator", "manager") and "@" in words[1]:
            found[words[0]] = (words[1], words[3])
    return found


def test_the_demo_people_sign_in_with_the_passwords_printed_once(app):
    first = demo_people(app)
    assert set(first) == {"operator", "manager"}
    for email, password in first.values():
        assert pages(app.test_client()).sign_in(email, password).status_code == 302
    again = demo_people(app)
    assert again["operator"][1] != first["operator"][1]
    assert pages(app.test_client()).sign_in(*first["manager"]).status_code == 401
    manager = pages(app.test_client())
    assert manager.sign_in(*again["manager"]).status_code == 302
    assert again["manager"][0] in manager.get("/admin/users").get_data(as_text=True)
