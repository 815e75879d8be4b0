"""gunicorn's settings (`couponsvc/gunicorn_conf.py`), read as gunicorn reads them.

The module prepares the metrics directory and sets environment defaults when it is
imported, so it is imported in a process of its own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

READ_AS_GUNICORN_DOES = """
import json, os
from gunicorn.config import Config
from couponsvc import gunicorn_conf
cfg = Config()
for name in ("logconfig_dict", "logger_class", "accesslog"):
    cfg.set(name, getattr(gunicorn_conf, name, cfg.settings[name].default))
log = cfg.logger_class(cfg)
print(json.dumps({"json_logs": bool(cfg.logconfig_dict), "access_log": log.access_log_enabled,
                  "log_write_ms": os.environ.get("COUPONSVC_LOG_WRITE_MS")}))
"""


def _read(tmp_path, **environ) -> dict:
    env = {"PATH": "/usr/bin:/bin", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
           "COUPONSVC_LOG_FORMAT": "json", **environ}
    done = subprocess.run([sys.executable, "-c", READ_AS_GUNICORN_DOES], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_gunicorn_builds_no_access_line_of_its_own(tmp_path):
    """The app writes the access line; gunicorn, told of a logconfig_dict, would otherwise
    build one for every request (15 µs of a redeem's CPU) and throw it away."""
    read = _read(tmp_path)
    assert (read["json_logs"], read["access_log"]) == (True, False)


def test_under_gunicorn_log_lines_are_written_every_100_ms_unless_set(tmp_path):
    assert _read(tmp_path)["log_write_ms"] == "100"
    assert _read(tmp_path, COUPONSVC_LOG_WRITE_MS="0")["log_write_ms"] == "0"


def test_a_worker_freezes_the_loaded_app_out_of_the_garbage_collectors_walk(tmp_path):
    read = subprocess.run([sys.executable, "-c", (
        "import gc, json\n"
        "from couponsvc import gunicorn_conf\n"
        "before = gc.get_freeze_count()\n"
        "gunicorn_conf.post_worker_init(None)\n"
        "print(json.dumps([before, gc.get_freeze_count()]))")], cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)},
        capture_output=True, text=True, timeout=60, check=True)
    before, after = json.loads(read.stdout.strip().splitlines()[-1])
    assert before == 0 and after > 10_000
