"""Real processes for the delivery chaos tests: a private Redis and `couponsvc worker`s.

`start_redis()` runs a `redis-server` of the test's own on a free local port, with no
persistence, so that killing it and starting it again on the same port is Redis
"coming back empty"; the shared test Redis (and other people's test runs on it) is
never touched. `start_worker()` runs `couponsvc worker` configured only through the
environment, as in production (RQ SimpleWorkers and the periodic ticker; no RQ
scheduler: retries wait in the database). Every process is started in a session of
its own and stopped through that id (`stop()`: SIGTERM, then SIGKILL), which also
reaches the children of `--processes N`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from tests.racing import free_port, plain_postgres_url, wait_until

REPO = Path(__file__).resolve().parents[2]
_VENV_SCRIPT = REPO / ".venv" / "bin" / "couponsvc"
COUPONSVC = str(_VENV_SCRIPT if _VENV_SCRIPT.exists() else Path(sys.executable).with_name("couponsvc"))
REDIS_SERVER = "redis-server"
BOOT_DEADLINE = 30


# ---------------------------------------------------------------------------- redis --
def start_redis(log_dir: Path, port: int | None = None) -> tuple[str, subprocess.Popen]:
    """A private Redis on 127.0.0.1 with no persistence of its own: (url, process), ready.

    It starts empty unless `dump_path(log_dir, port)` exists (see `RedisServer.restart`).
    """
    port = port or free_port()
    log = open(log_dir / f"redis-{port}.log", "ab")  # noqa: SIM115 - the child process owns it
    try:
        process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no",
             "--dir", str(log_dir), "--dbfilename", dump_path(log_dir, port).name],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    finally:
        log.close()
    url = f"redis://127.0.0.1:{port}/0"
    try:
        wait_until(lambda: _answers(url, process), f"redis-server on port {port}", BOOT_DEADLINE)
    except BaseException:
        stop(process)
        raise
    return url, process


def dump_path(log_dir: Path, port: int) -> Path:
    return log_dir / f"redis-{port}.rdb"


def _answers(url: str, process: subprocess.Popen) -> bool:
    if process.poll() is not None:
        raise RuntimeError(f"redis-server exited with {process.returncode}")
    try:
        connection = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        try:
            return bool(connection.ping())
        finally:
            connection.close()
    except redis.exceptions.RedisError:
        return False


@dataclass
class RedisServer:
    """A private Redis that a test can kill and bring back, empty, on the same port."""

    log_dir: Path
    port: int = 0
    process: subprocess.Popen | None = None
    url: str = ""

    def start(self) -> RedisServer:
        self.url, self.process = start_redis(self.log_dir, self.port or None)
        self.port = int(self.url.rsplit(":", 1)[1].split("/")[0])
        return self

    def kill(self) -> None:
        """SIGKILL: Redis dies at once, losing everything it held (no persistence)."""
        if self.process is not None:
            stop(self.process, graceful=False)
            self.process = None

    def restart_empty(self) -> None:
        """Redis dies and comes back with nothing (a crash without persistence)."""
        self.kill()
        dump_path(self.log_dir, self.port).unlink(missing_ok=True)
        self.start()

    def restart(self, down_for: float = 0.0) -> None:
        """Redis goes away for `down_for` seconds and comes back with its data (a restart
        with persistence, a failover): every connection breaks, every key survives."""
        with contextlib.suppress(redis.exceptions.ConnectionError):
            self.client().shutdown(save=True)
        if self.process is not None:
            self.process.wait(timeout=30)
            stop(self.process, graceful=False)
            self.process = None
        time.sleep(down_for)
        self.start()
        dump_path(self.log_dir, self.port).unlink(missing_ok=True)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)


# -------------------------------------------------------------------------- workers --
def production_environment(app) -> dict[str, str]:
    """The settings a boot on PostgreSQL requires, as the test app has them, so that another
    process signs, encrypts and links as the test app does (on SQLite: the keys under
    the shared instance path)."""
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        return {}
    return {"COUPONSVC_QR_SIGNING_KEYS": ",".join(app.config["QR_SIGNING_KEYS"]),
            "COUPONSVC_DATA_KEYS": ",".join(app.config["DATA_KEYS"]),
            "COUPONSVC_PUBLIC_URL": app.config["PUBLIC_URL"]}


def worker_environment(app, instance_path: str, redis_url: str, **extra: str) -> dict[str, str]:
    """The environment of a `couponsvc worker` serving the test app's database."""
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    database_url = plain_postgres_url(uri) if uri.startswith("postgresql") else uri
    inherited = {name: value for name, value in os.environ.items()
                 if name not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY"}
                 and not name.startswith(("COUPONSVC_", "FLASK_"))}
    return {
        **inherited,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": app.config["SECRET_KEY"],
        "COUPONSVC_INSTANCE_PATH": instance_path,
        "COUPONSVC_ALLOW_PRIVATE_WEBHOOK_TARGETS": "1",
        "COUPONSVC_SWEEP_INTERVAL": "1",
        "PYTHONUNBUFFERED": "1",
        **production_environment(app),
        **extra,
    }


@dataclass
class Worker:
    process: subprocess.Popen
    log_path: Path
    args: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 80) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError as error:
            return f"<no log: {error}>"


def start_worker(env: dict[str, str], log_path: Path, processes: int = 1) -> Worker:
    """`couponsvc worker [--processes N]` in a session of its own, logging to `log_path`."""
    args = [COUPONSVC, "worker"] + (["--processes", str(processes)] if processes > 1 else [])
    log = open(log_path, "ab")  # noqa: SIM115 - the child process owns it
    try:
        process = subprocess.Popen(args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    finally:
        log.close()
    return Worker(process, log_path, args)


def sigkill(worker: Worker) -> None:
    """Kill the worker and everything it started (the children of `--processes N`) at once:
    no cleanup, so a drain it ran keeps its lock in Redis and its leases in the database
    until they expire."""
    stop(worker.process, graceful=False)


def stop(process: subprocess.Popen, graceful: bool = True, wait: float = 20) -> None:
    """Stop a process started here and its session, by id: SIGTERM, then SIGKILL."""
    if graceful and process.poll() is None:
        _signal_group(process, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=wait)
    # The process group outlives its leader when a child (of `--processes N`) is left.
    _signal_group(process, signal.SIGKILL)
    process.wait(timeout=30)


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    # The child leads a session of its own (start_new_session), so its group id is its pid.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)
