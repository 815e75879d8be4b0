"""No secret, key, password or whole coupon code in any log line of a whole day's scene.

A merchant's people sign in (one mistypes the password), API keys are made, a DingTalk
robot (its token in the URL, a signing secret) and a webhook (its whsec_ secret) are
connected, coupons are sold and redeemed (one of another merchant's, refused), and a real
RQ worker sends the deliveries to a local receiver. Everything is logged from DEBUG up,
SQL with its parameters included (what an operator chasing a problem might turn on), and
every line is formatted as the service writes it (JSON and text). Then each secret and
each full code is looked for in that output: none may be there. That the masking was
needed is shown too: the masked forms of the robot's token and of the codes are there.
"""

from __future__ import annotations

import logging

import pytest
from rq import Queue, SimpleWorker

from couponsvc import codes
from couponsvc.jobs import runner
from couponsvc.logs.formatting import JsonFormatter, TextFormatter
from tests.admin.conftest import Pages, make_person
from tests.factories import Shop
from tests.integrations.receiver import Answer, Receiver

pytestmark = pytest.mark.config(ALLOW_PRIVATE_WEBHOOK_TARGETS=True, LOG_LEVEL="DEBUG")

ROBOT_TOKEN = "d1n9t4lk0robot0token0aa11bb22cc33dd44"
ROBOT_SECRET = "SEC0f1e2d3c4b5a69788796a5b4c3d2e1f0aabbccddeeff00112233445566778899"
PASSWORD = "Tr0ub4dor&3-lunch-deal"
WRONG_PASSWORD = "Tr0ub4dor&3-mistyped"


def answer(received) -> Answer:
    if received.path.startswith("/robot/send"):
        return Answer(200, b'{"errcode": 0, "errmsg": "ok"}', {"Content-Type": "application/json"})
    return Answer(200, b"{}")


def test_a_day_of_work_leaves_no_secret_in_the_logs(client, app, caplog):
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")  # SQL with its parameters
    caplog.set_level(logging.DEBUG)  # (last: it sets the capture's own level too)
    with Receiver() as receiver:
        receiver.handler = answer
        secrets, full_codes = _scene(client, app, receiver)
        assert {request.path.split("?")[0] for request in receiver.requests} == {"/robot/send", "/hook"}

    output = "\n".join(formatter.format(record) for record in caplog.records
                       for formatter in (JsonFormatter(), TextFormatter()))
    found = [name for name, secret in secrets.items() if secret in output]
    assert found == [], f"in the logs: {found}"
    whole = [code for code in full_codes if code in output or codes.display(code) in output]
    assert whole == [], f"full coupon codes in the logs: {whole}"
    # the masking did work on something: the robot's URL (urllib3's DEBUG line of the
    # call) and the codes (SQL parameters) were logged, masked
    assert "access_token=[redacted]" in output
    assert any(f"{code[:4]}-****-****" in output for code in full_codes)


def _scene(client, app, receiver) -> tuple[dict[str, str], list[str]]:
    shop, other = Shop(client), Shop(client)
    person = make_person(app, role="manager", merchant_id=shop.merchant["id"], password=PASSWORD)
    page = Pages(app.test_client())
    assert page.sign_in(person.email, WRONG_PASSWORD).status_code == 401  # the form again
    assert page.sign_in(person.email, PASSWORD).status_code == 302
    session_cookie = page.http.get_cookie("couponsvc_admin").value
    assert page.get("/admin/").status_code == 200

    robot = client.ok(client.post(f"merchants/{shop.merchant['id']}/integrations", {
        "adapter": "dingtalk", "events": ["campaign.published"], "config": {
            "webhook_url": f"{receiver.url}/robot/send?access_token={ROBOT_TOKEN}",
            "secret": ROBOT_SECRET, "poster": False}}, key=shop.manager), 201)
    hook = client.ok(client.post(f"merchants/{shop.merchant['id']}/integrations", {
        "adapter": "webhook", "config": {"url": receiver.url + "/hook"},
        "events": ["coupon.redeemed"]}, key=shop.manager), 201)
    assert robot["id"] and hook["secret"].startswith("whsec_")
    client.campaign(shop.merchant["id"])  # announced by the robot

    ours = [coupon["code"] for coupon in shop.coupons(2)]
    theirs = other.coupon()["code"]
    client.ok(shop.redeem(ours[0]), 201)
    assert shop.redeem(theirs).status_code == 404  # another merchant's coupon: not found
    assert client.get(f"coupons/{ours[1]}", key=shop.manager).status_code == 200
    connection = runner(app).redis()
    with app.app_context():
        SimpleWorker([Queue(name, connection=connection) for name in ("deliveries", "default")],
                     connection=connection).work(burst=True)

    config = app.config
    secrets = {
        "platform key": client.platform, "manager key": shop.manager, "scanner key": shop.scanner,
        "other merchant's key": other.scanner, "password": PASSWORD, "mistyped password": WRONG_PASSWORD,
        "session cookie": session_cookie, "webhook secret": hook["secret"],
        "webhook secret's key": hook["secret"].removeprefix("whsec_"),
        "robot token": ROBOT_TOKEN, "robot secret": ROBOT_SECRET, "SECRET_KEY": config["SECRET_KEY"],
        **{f"data key {n}": key for n, key in enumerate(config.get("DATA_KEYS") or [])},
        **{f"QR key {n}": key for n, key in enumerate(config.get("QR_SIGNING_KEYS") or [])},
    }
    return secrets, [*ours, theirs]
