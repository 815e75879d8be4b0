"""The programs of the multi-host test, each started on a host (a network namespace,
`network.Host`) or on this machine, and stopped by its pid.

PostgreSQL is a throwaway cluster of the test's own (initdb into a temporary directory,
run as the `postgres` user): the machine's own PostgreSQL and its configuration are left
alone. PgBouncer (also used by `tests/test_pgbouncer.py` on 127.0.0.1), Redis, Redis
Sentinel and HAProxy are Debian's packages (`scripts/lib/bootstrap.sh`: ensure_multihost),
each run in the foreground on chosen addresses with a configuration written here.
Web nodes are gunicorn serving `couponsvc:create_app()`, workers `couponsvc worker`,
both configured through the environment only, as in production.

Every program runs in a session of its own; `Service.stop()` signals that session (the
program and any child it forked) by id: the given signal, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .network import Host

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
BOOT_DEADLINE = 120  # s: a loaded CI machine imports the app slowly


def program(name: str) -> str | None:
    """The path of a program, looked for in the sbin directories too (not on a user's PATH)."""
    found = shutil.which(name)
    if found:
        return found
    for directory in ("/usr/sbin", "/sbin", "/usr/local/sbin"):
        if os.access(os.path.join(directory, name), os.X_OK):
            return os.path.join(directory, name)
    return None


def postgres_bindir() -> Path | None:
    """The newest installed PostgreSQL server's bin directory (Debian's layout)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0)
    return Path(found[-1]).parent if found else None


def wait_for(condition: Callable[[], bool], what: str, deadline: float = BOOT_DEADLINE,
             service: Service | None = None) -> None:
    """Poll until `condition()`; fail naming `what` (and the service's log) otherwise."""
    end = time.monotonic() + deadline
    last: BaseException | None = None
    while True:
        if service is not None and not service.alive():
            raise RuntimeError(f"{service.name} exited with {service.process.returncode}:\n"
                               f"{service.log_tail()}")
        try:
            if condition():
                return
        except Exception as error:  # not up yet
            last = error
        if time.monotonic() > end:
            tail = f"\n{service.log_tail()}" if service is not None else ""
            raise RuntimeError(f"gave up after {deadline:.0f} s waiting for {what} "
                               f"(last error: {last!r}){tail}")
        time.sleep(0.1)


def tcp_open(address: str, port: int) -> bool:
    with socket.create_connection((address, port), timeout=1):
        return True


# ---------------------------------------------------------------------------- runner --
@dataclass
class Service:
    name: str
    process: subprocess.Popen
    log_path: Path
    stop_signal: int = signal.SIGTERM

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError as error:
            return f"<no log: {error}>"

    def kill(self) -> None:
        """SIGKILL, at once: a host losing its process, without any cleanup."""
        self._signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=30)

    def stop(self, wait: float = 15) -> None:
        if self.alive():
            self._signal(self.stop_signal)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=wait)
        self._signal(signal.SIGKILL)  # and whatever it left in its session
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=30)

    def _signal(self, signum: int) -> None:
        # start_new_session: the process leads its session and group, whose id is its pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)


def spawn(name: str, argv: list[str], log_dir: Path, *, host: Host | None = None,
          user: str | None = None, env: dict[str, str] | None = None,
          stop_signal: int = signal.SIGTERM) -> Service:
    """Start `argv` on `host` (this machine's namespace when None), as `user` if given."""
    prefix: list[str] = []
    options: dict = {}
    if host is not None:
        prefix = host.enter()
        if user is not None:
            entry = pwd.getpwnam(user)
            prefix += [f"--setuid={entry.pw_uid}", f"--setgid={entry.pw_gid}"]
    elif user is not None and os.geteuid() == 0:
        entry = pwd.getpwnam(user)
        options = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
    log_path = log_dir / f"{name}.log"
    log = open(log_path, "ab")  # noqa: SIM115 - the child process owns it
    try:
        process = subprocess.Popen(prefix + argv, cwd=REPO, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True, **options)
    finally:
        log.close()
    return Service(name, process, log_path, stop_signal)


def owned_dir(path: Path, user: str | None) -> Path:
    """A directory `user` owns (root runs the tests; PostgreSQL and PgBouncer refuse root)."""
    path.mkdir(parents=True, exist_ok=True)
    if user is not None and os.geteuid() == 0:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    os.chmod(path, 0o700)
    return path


def service_user() -> str | None:
    """The user PostgreSQL and PgBouncer run as: `postgres` under root, else oneself."""
    return "postgres" if os.geteuid() == 0 else None


# ------------------------------------------------------------------------ PostgreSQL --
@dataclass
class Postgres:
    service: Service
    data_dir: Path
    port: int

    def stop(self) -> None:
        self.service.stop()  # SIGINT: PostgreSQL's fast shutdown


def start_postgres(base: Path, log_dir: Path, *, host: Host, listen: list[str],
                   trust: str, port: int = 5432) -> Postgres:
    """A throwaway cluster (initdb) on `host`, listening on `listen`, trusting `trust` (a CIDR)."""
    bindir = postgres_bindir()
    if bindir is None:
        raise RuntimeError("no PostgreSQL server under /usr/lib/postgresql (apt-get install postgresql)")
    user = service_user()
    data_dir = owned_dir(base / "pgdata", user)
    socket_dir = owned_dir(base / "pgsocket", user)
    initdb = subprocess.run(
        [str(bindir / "initdb"), "-D", str(data_dir), "-U", "postgres", "--auth=trust",
         "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
        capture_output=True, text=True, cwd="/", **_as_user(user))
    if initdb.returncode != 0:
        raise RuntimeError(f"initdb failed: {initdb.stderr}")
    with open(data_dir / "pg_hba.conf", "a") as hba:
        hba.write(f"host all all {trust} trust\n")
    service = spawn(
        "postgres", [str(bindir / "postgres"), "-D", str(data_dir),
                     "-c", f"listen_addresses={','.join(listen)}", "-c", f"port={port}",
                     "-c", f"unix_socket_directories={socket_dir}", "-c", "max_connections=200",
                     "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "shared_buffers=64MB"],
        log_dir, host=host, user=user, stop_signal=signal.SIGINT)
    wait_for(lambda: tcp_open(listen[-1], port), f"PostgreSQL on {listen[-1]}:{port}",
             service=service)
    return Postgres(service, data_dir, port)


def _as_user(user: str | None) -> dict:
    if user is None or os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


# ------------------------------------------------------------------------- PgBouncer --
def pgbouncer_version() -> tuple[int, ...] | None:
    binary = program("pgbouncer")
    if binary is None:
        return None
    words = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.split()
    version = words[1] if len(words) > 1 else ""
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return None


def start_pgbouncer(base: Path, log_dir: Path, *, listen: str, port: int, server_host: str,
                    server_port: int, pool_size: int, host: Host | None = None,
                    name: str = "pgbouncer", database_user: str = "postgres") -> Service:
    """PgBouncer in transaction mode on `listen:port`, for every database of the server at
    `server_host:server_port`, with `pool_size` server connections per database and user."""
    binary = program("pgbouncer")
    if binary is None:
        raise RuntimeError("pgbouncer is not installed (apt-get install pgbouncer)")
    user = service_user()
    directory = owned_dir(base / name, user)
    (directory / "users.txt").write_text(f'"{database_user}" ""\n')
    (directory / "pgbouncer.ini").write_text(pgbouncer_ini(
        listen=listen, port=port, server_host=server_host, server_port=server_port,
        pool_size=pool_size, auth_file=directory / "users.txt", admin=database_user))
    if user is not None and os.geteuid() == 0:
        entry = pwd.getpwnam(user)
        for path in directory.iterdir():
            os.chown(path, entry.pw_uid, entry.pw_gid)
    service = spawn(name, [binary, str(directory / "pgbouncer.ini")], log_dir, host=host,
                    user=user, stop_signal=signal.SIGINT)
    wait_for(lambda: tcp_open(listen, port), f"PgBouncer on {listen}:{port}", service=service)
    return service


def pgbouncer_ini(*, listen: str, port: int, server_host: str, server_port: int,
                  pool_size: int, auth_file: Path, admin: str = "postgres") -> str:
    """The settings docs/operations.md describes for couponsvc behind PgBouncer."""
    return f"""\
[databases]
* = host={server_host} port={server_port}

[pgbouncer]
listen_addr = {listen}
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {auth_file}
admin_users = {admin}
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = 1000
server_reset_query = DISCARD ALL
ignore_startup_parameters = extra_float_digits
log_connections = 0
log_disconnections = 0
"""


# ------------------------------------------------------------------- Redis, Sentinel --
def start_redis(base: Path, log_dir: Path, *, host: Host, port: int = 6379,
                replica_of: str | None = None) -> Service:
    directory = owned_dir(base / f"redis-{host.name}", None)
    argv = [program("redis-server") or "redis-server", "--bind", host.address, "--port", str(port),
            "--protected-mode", "no", "--save", "", "--appendonly", "no", "--daemonize", "no",
            "--dir", str(directory)]
    if replica_of is not None:
        argv += ["--replicaof", replica_of, str(port)]
    service = spawn(f"redis-{host.name}", argv, log_dir, host=host)
    wait_for(lambda: tcp_open(host.address, port), f"Redis on {host.address}:{port}", service=service)
    return service


def start_sentinel(base: Path, log_dir: Path, *, host: Host, service_name: str, primary: str,
                   quorum: int, port: int = 26379, down_after_ms: int = 1000,
                   failover_timeout_ms: int = 4000) -> Service:
    """A Sentinel watching `primary` (its address; port 6379) as `service_name`."""
    directory = owned_dir(base / f"sentinel-{host.name}", None)
    config = directory / "sentinel.conf"  # Sentinel rewrites it with what it learns
    config.write_text(f"""\
port {port}
bind {host.address}
protected-mode no
daemonize no
dir {directory}
sentinel resolve-hostnames no
sentinel monitor {service_name} {primary} 6379 {quorum}
sentinel down-after-milliseconds {service_name} {down_after_ms}
sentinel failover-timeout {service_name} {failover_timeout_ms}
sentinel parallel-syncs {service_name} 1
""")
    binary = program("redis-sentinel")
    argv = [binary, str(config)] if binary else [program("redis-server") or "redis-server",
                                                  str(config), "--sentinel"]
    service = spawn(f"sentinel-{host.name}", argv, log_dir, host=host)
    wait_for(lambda: tcp_open(host.address, port), f"Sentinel on {host.address}:{port}",
             service=service)
    return service


# --------------------------------------------------------------------------- HAProxy --
def start_haproxy(base: Path, log_dir: Path, *, host: Host, port: int,
                  backends: dict[str, str]) -> Service:
    """HAProxy on `host:port`, round robin over `backends` (name: address:port), each
    checked on GET /healthz twice a second, out after two failures."""
    directory = owned_dir(base / "haproxy", None)
    servers = "\n".join(f"    server {name} {address} check" for name, address in backends.items())
    config = directory / "haproxy.cfg"
    config.write_text(haproxy_cfg(f"{host.address}:{port}", servers))
    service = spawn("haproxy", [program("haproxy") or "haproxy", "-db", "-f", str(config)],
                    log_dir, host=host)
    wait_for(lambda: tcp_open(host.address, port), f"HAProxy on {host.address}:{port}",
             service=service)
    return service


def haproxy_cfg(bind: str, servers: str) -> str:
    """The load balancer of docs/operations.md."""
    return f"""\
global
    maxconn 4096

defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout http-request 10s
    option redispatch
    # only a connection that failed before the request was sent is tried on another node:
    # a redeem is never sent twice by the load balancer
    retries 2
    retry-on conn-failure

frontend couponsvc
    bind {bind}
    # the client's address, for the failed-look-up budget (COUPONSVC_TRUSTED_PROXIES=1):
    # set, never appended to, so a client cannot choose it
    http-request set-header X-Forwarded-For %[src]
    default_backend nodes

backend nodes
    balance roundrobin
    option httpchk
    http-check send meth GET uri /healthz
    http-check expect status 200
    default-server inter 500ms fall 2 rise 2
{servers}
"""


# ----------------------------------------------------------------- couponsvc itself --
def start_node(log_dir: Path, *, host: Host, port: int, env: dict[str, str],
               threads: int = 8) -> Service:
    """A web node: gunicorn with couponsvc's settings (`couponsvc/gunicorn_conf.py`, as
    docs/operations.md deploys it) and one worker process of `couponsvc:create_app()`."""
    argv = [str(BIN / "gunicorn"), "-c", "python:couponsvc.gunicorn_conf", "-w", "1",
            "--threads", str(threads), "-b", f"{host.address}:{port}", "--graceful-timeout", "5",
            "--no-control-socket", "couponsvc:create_app()"]
    return spawn(f"node-{host.name}", argv, log_dir, host=host, env=env)


def start_worker(log_dir: Path, *, host: Host, env: dict[str, str]) -> Service:
    """`couponsvc worker`: RQ SimpleWorker and the periodic ticker."""
    return spawn(f"worker-{host.name}", [str(BIN / "couponsvc"), "worker"], log_dir, host=host,
                 env=env)
