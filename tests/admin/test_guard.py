"""The guard: `operator_only` refuses managers with a page; a signed-in person's principal
is the one the API's keys get; unknown admin paths are 404 pages."""

from __future__ import annotations

from flask import g

from couponsvc import people
from couponsvc.admin.guard import current_person, safe_next
from couponsvc.principal import MANAGER, PLATFORM


def test_operator_only_refuses_a_manager_with_a_403_page(app, client, operator, manager_of,
                                                         signed_in):
    merchant = client.merchant()
    manager = signed_in(app.test_client(), manager_of(merchant))
    refused = manager.post("/admin/merchants", {"name": "新店", "city": "赣州"})
    assert refused.status_code == 403 and refused.mimetype == "text/html"
    assert "你无权执行此操作" in refused.get_data(as_text=True)
    anonymous = app.test_client().post("/admin/merchants", data={})
    assert anonymous.status_code == 400  # no CSRF token: refused before anything else


def test_the_principal_of_a_person_is_the_apis(app, client, operator, manager_of, signed_in):
    merchant = client.merchant()
    manager = manager_of(merchant)
    for person, role, merchant_id in ((operator, PLATFORM, None), (manager, MANAGER, merchant["id"])):
        page = signed_in(app.test_client(), person)
        token = page.http.get_cookie("couponsvc_admin").value
        with app.test_request_context(headers={"Cookie": f"couponsvc_admin={token}"}):
            assert current_person()
            assert (g.principal.role, g.principal.merchant_id, g.principal.user_id,
                    g.principal.key_id) == (role, merchant_id, person.id, None)
            assert g.person.email == person.email


def test_unknown_admin_paths_are_404_pages(app, operator, signed_in):
    page = signed_in(app.test_client(), operator)
    for path in ("/admin/nothing", "/admin/users/adm_nobody/disable"):
        answer = page.get(path) if "disable" not in path else page.post(path)
        assert answer.status_code == 404 and answer.mimetype == "text/html"


def test_safe_next_keeps_admin_paths_only():
    assert safe_next("/admin/campaigns?status=live") == "/admin/campaigns?status=live"
    for target in (None, "", "https://evil.example/admin", "//evil.example", "/\\evil", "/api/v1/x",
                   "admin"):
        assert safe_next(target) is None


def test_principal_of_a_person():
    person = people.principal_of(type("P", (), {"id": "adm_1", "role": "manager",
                                                "merchant_id": "mer_1"})())
    assert (person.role, person.merchant_id, person.key_id) == (MANAGER, "mer_1", None)


def test_admin_pages_may_not_be_framed(app, operator, signed_in):
    """Not even by a site of the same registrable domain, whose frames get the Lax cookies."""
    page = signed_in(app.test_client(), operator)
    for path in ("/admin/sign-in", "/admin/", "/admin/users", "/admin/nowhere"):
        answer = page.get(path)
        assert answer.headers["X-Frame-Options"] == "DENY", path
        assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"], path
