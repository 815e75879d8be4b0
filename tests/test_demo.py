"""The first run: the README's example code is the demo's coupon, and `./scripts/serve`
prints a command that works and counts failed look-ups once without Redis."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import requests
from sqlalchemy import select

from couponsvc import codes
from couponsvc.demo import README_CODE
from couponsvc.extensions import db
from couponsvc.models import Coupon, Event
from tests.racing import free_port, wait_until

REPO = Path(__file__).resolve().parent.parent


def _readme_example_code() -> str:
    readme = (REPO / "README.md").read_text()
    trying = readme.split("## Trying it", 1)[1].split("\n## ", 1)[0]
    return re.search(r'"code": "([^"]+)"', trying).group(1)


def test_the_readmes_example_code_passes_its_check_and_is_the_demos():
    example = _readme_example_code()
    assert codes.is_valid(example)
    assert codes.canonical(example) == README_CODE


def test_the_demo_creates_the_readmes_coupon_and_prints_it(app, client):
    result = app.test_cli_runner().invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    scanner = next(line.split()[2] for line in lines if line.startswith("scanner key"))
    printed = next(line.split()[1] for line in lines if line.startswith("coupon"))
    assert printed == _readme_example_code()

    answer = client.post("redemptions/validate", {"code": _readme_example_code()}, key=scanner)
    assert answer.status_code == 200 and answer.get_json()["ok"] is True, answer.get_json()
    with app.app_context():
        coupon = db.session.get(Coupon, README_CODE)
        issued = [e.data for e in db.session.execute(
            select(Event).where(Event.type == "coupon.issued")).scalars()]
        stored = db.session.execute(select(Coupon.code)).scalars().all()
    assert coupon.status == "active"
    # The issue event names the code the coupon has, not the one it was drawn with.
    listed = [c["code"] for data in issued for c in data["coupons"]]
    assert README_CODE in listed and sorted(listed) == sorted(stored) and len(stored) == 3


def test_scripts_serve_prints_a_working_command_and_counts_failed_lookups_once(tmp_path):
    """The real ./scripts/serve with no Redis, asked for 2 workers: the printed curl command
    checks the demo coupon, and the 31st failed look-up of its key is refused (30/minute),
    which several processes counting on their own would let through."""
    port = free_port()
    env = {name: value for name, value in os.environ.items()
           if name not in ("REDIS_URL", "DATABASE_URL", "SECRET_KEY")
           and not name.startswith("COUPONSVC_")}
    env |= {"PORT": str(port), "WEB_CONCURRENCY": "2",
            "COUPONSVC_INSTANCE_PATH": str(tmp_path / "instance")}
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        serve = subprocess.Popen([str(REPO / "scripts" / "serve")], cwd=REPO, env=env, stdout=log,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        def up() -> bool:
            assert serve.poll() is None, log_path.read_text()
            try:
                return requests.get(f"{base}/healthz", timeout=5).ok
            except (requests.ConnectionError, requests.Timeout):  # a worker still booting
                return False

        wait_until(up, "./scripts/serve to answer", deadline=600)
        output = log_path.read_text()
        assert "COUPONSVC_ALLOW_PRIVATE_WEBHOOK_TARGETS=1" in output
        command = next(line for line in output.splitlines() if line.strip().startswith("curl "))
        key = re.search(r"Bearer (\S+)\"", command).group(1)
        body = re.search(r"-d '([^']+)'", command).group(1)
        url = command.split()[-1]
        assert url == f"{base}/api/v1/redemptions/validate"
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        answer = requests.post(url, data=body, headers=headers, timeout=30)
        assert answer.status_code == 200 and answer.json()["ok"] is True, answer.text
        assert answer.json()["coupon"]["code"] in (README_CODE, codes.display(README_CODE))

        misses = 0
        while misses <= 200:
            guess = requests.post(url, json={"code": codes.generate()}, timeout=30,
                                  headers={"Authorization": f"Bearer {key}"})
            if guess.status_code == 429:
                break
            assert guess.json().get("code") == "coupon_not_found", guess.text
            misses += 1
        assert misses == 30, log_path.read_text()[-3000:]
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGTERM)
            try:
                serve.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(serve.pid, signal.SIGKILL)
                serve.wait(timeout=30)
