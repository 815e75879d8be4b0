"""The browser fixtures themselves: the live server is the test's app, nothing leaves."""

from __future__ import annotations

from .conftest import browser_log


def test_the_browser_sees_what_the_test_client_made(client, page):
    merchant = client.merchant(name="面馆")
    page.goto("/problems/")
    seen = page.evaluate(
        """([id, key]) => fetch('/api/v1/merchants/' + id, {headers: {Authorization: 'Bearer ' + key}})
                           .then(answer => answer.json())""",
        [merchant["id"], client.platform])
    assert seen["name"] == "面馆"


def test_a_request_for_another_host_is_recorded_and_never_answered(page):
    page.goto("/problems/")
    outcome = page.evaluate("""() => fetch('https://cdn.jsdelivr.net/npm/htmx.org')
                                 .then(() => 'answered', () => 'refused')""")
    assert outcome == "refused"
    log = browser_log(page)
    assert log.external_requests == ["https://cdn.jsdelivr.net/npm/htmx.org"]
    log.external_requests.clear()  # seen on purpose: the teardown would fail the test
