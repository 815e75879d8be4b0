"""Hosts on this machine: one Linux network namespace each, wired to a bridge.

`Network.create()` takes a free /24 of 10.231.0.0/16 (a lock file and the addresses
already on this machine decide which), makes a bridge `cmhN-br` holding the range's
first address (so this process, in the root namespace, is on the same segment as every
host and reaches each directly, with no routing), and for each host a namespace
`cmhN-<name>` joined to the bridge by a veth pair, with its address and a loopback.
`Network.destroy()` kills whatever still runs in the namespaces, deletes them and the
bridge, and frees the range; a range whose owner died without doing so (a killed test
run) is cleaned up and taken by the next run.

Everything here needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN): `unavailable()` says
why it cannot be done, for a skip.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

STATE_DIR = Path("/run/couponsvc-multihost")
FIRST_RANGE, LAST_RANGE = 0, 63  # 10.231.N.0/24
PREFIX = "cmh"


def unavailable() -> str | None:
    """Why network namespaces cannot be made here, or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root (run as root, as CI does)"
    for program in ("ip", "nsenter"):
        if shutil.which(program) is None and not Path(f"/usr/sbin/{program}").exists():
            return f"{program} is not installed (iproute2, util-linux)"
    probe = f"{PREFIX}probe{os.getpid() % 100000}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip() or made.returncode}"
    subprocess.run(["ip", "netns", "delete", probe], capture_output=True)
    return None


def ip(*args: str, netns: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    command = ["ip", *(["-n", netns] if netns else []), *args]
    done = subprocess.run(command, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {done.stderr.strip()}")
    return done


@dataclass
class Host:
    name: str  # short: db, r1, w1, ...
    namespace: str
    address: str

    def enter(self) -> list[str]:
        """The command prefix that runs a program on this host."""
        return ["nsenter", f"--net=/run/netns/{self.namespace}"]


@dataclass
class Network:
    number: int
    hosts: dict[str, Host] = field(default_factory=dict)
    _lock_file: object = None

    @property
    def prefix(self) -> str:
        return f"10.231.{self.number}"

    @property
    def bridge(self) -> str:
        return f"{PREFIX}{self.number}-br"

    @property
    def gateway(self) -> str:
        """This machine's own address on the segment (the root namespace)."""
        return f"{self.prefix}.1"

    def address(self, last: int) -> str:
        return f"{self.prefix}.{last}"

    # ------------------------------------------------------------------ making it --
    @classmethod
    def create(cls, hosts: dict[str, int], extra_addresses: tuple[int, ...] = ()) -> Network:
        """A bridge, and a namespace for each `name: last octet` in `hosts`.

        `extra_addresses` are more addresses of the root namespace on the segment
        (clients that must come from addresses of their own)."""
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        with open(STATE_DIR / "lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            number = _take_range()
        network = cls(number)
        try:
            ip("link", "add", network.bridge, "type", "bridge")
            ip("addr", "add", f"{network.gateway}/24", "dev", network.bridge)
            for last in extra_addresses:
                ip("addr", "add", f"{network.address(last)}/24", "dev", network.bridge)
            ip("link", "set", network.bridge, "up")
            for name, last in hosts.items():
                network._add_host(name, last)
        except BaseException:
            network.destroy()
            raise
        return network

    def _add_host(self, name: str, last: int) -> None:
        namespace = f"{PREFIX}{self.number}-{name}"
        outside, inside = f"{PREFIX}{self.number}{name}h", f"{PREFIX}{self.number}{name}n"
        ip("netns", "add", namespace)
        self.hosts[name] = host = Host(name, namespace, self.address(last))
        ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        ip("link", "set", inside, "netns", namespace)
        ip("link", "set", outside, "master", self.bridge)
        ip("link", "set", outside, "up")
        ip("link", "set", "lo", "up", netns=namespace)
        ip("addr", "add", f"{host.address}/24", "dev", inside, netns=namespace)
        ip("link", "set", inside, "up", netns=namespace)

    # ------------------------------------------------------------------- undoing it --
    def destroy(self) -> None:
        """Kill what runs in the namespaces, delete them, the bridge and the claim."""
        _remove_range(self.number)


def _claim_path(number: int) -> Path:
    return STATE_DIR / f"range-{number}.pid"


def _take_range() -> int:
    """A range nobody alive holds and no address on this machine uses (lock held)."""
    in_use = ip("-o", "addr", "show").stdout
    for number in range(FIRST_RANGE, LAST_RANGE + 1):
        claim = _claim_path(number)
        if claim.exists():
            if _alive(claim.read_text().strip()):
                continue
            _remove_range(number)  # left by a run that died
        elif f" 10.231.{number}." in in_use:
            continue  # someone else's
        claim.write_text(str(os.getpid()))
        return number
    raise RuntimeError("no free 10.231.N.0/24 range for the multi-host test")


def _alive(pid_text: str) -> bool:
    try:
        os.kill(int(pid_text), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def _remove_range(number: int) -> None:
    namespaces = [line.split()[0] for line in ip("netns", "list", check=False).stdout.splitlines()
                  if line.startswith(f"{PREFIX}{number}-")]
    for namespace in namespaces:
        _kill_inside(namespace)
    for namespace in namespaces:
        ip("netns", "delete", namespace, check=False)
    ip("link", "delete", f"{PREFIX}{number}-br", check=False)
    with contextlib.suppress(FileNotFoundError):
        _claim_path(number).unlink()


def _kill_inside(namespace: str) -> None:
    """SIGKILL every process still running in the namespace (by pid: `ip netns pids`)."""
    for _ in range(50):
        pids = [int(pid) for pid in ip("netns", "pids", namespace, check=False).stdout.split()]
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
