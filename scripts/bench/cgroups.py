"""CPU shares and cores for `scripts/bench_scaling.py`: a tree of cgroups named
couponsvc-bench-<tag>, with a CPU share (`cpu.max`) and a set of cores (`cpuset.cpus`) per
cgroup. cgroup v2 where /sys/fs/cgroup is the unified hierarchy; where the cpu and cpuset
controllers are still mounted as v1 hierarchies (/sys/fs/cgroup/cpu, /sys/fs/cgroup/cpuset),
the same tree is made in both, with `cpu.cfs_quota_us` for the share.

Every process moved into the tree goes back to the cgroup it came from, and the tree is
removed, by `restore()` (the benchmark calls it in a `finally`); a tree left by a run that
was killed is emptied into the root and removed by the next run."""

from __future__ import annotations

import contextlib
import errno
import os
import time
from pathlib import Path

from bench.common import BenchError, log

CGROUP_FS = Path("/sys/fs/cgroup")
PREFIX = "couponsvc-bench-"
PERIOD_US = 20_000  # short, so that a throttled node waits at most a few ms; >= 1,000 us of quota from 0.05 CPU


def _write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError as error:
        raise BenchError(f"cannot write {value!r} to {path}: {error}") from error


class CpuGroups:
    """The benchmark's cgroups: `make()` a path relative to the tree's top, `move()` a
    process into it, `restore()` everything."""

    def __init__(self, tag: str) -> None:
        if os.geteuid() != 0:
            raise BenchError("cgroups can only be written as root: run the benchmark as root")
        self.version, self.roots = self._detect()
        self.top = PREFIX + tag
        self.made: list[str] = []  # relative paths, parents first
        self.origin: dict[str, dict[str, str]] = {}  # a leaf's processes go back there
        self.enabled_at_root: list[str] = []
        self._clean_leftovers()

    @staticmethod
    def _detect() -> tuple[int, dict[str, Path]]:
        controllers = CGROUP_FS / "cgroup.controllers"
        if controllers.exists():
            have = controllers.read_text().split()
            missing = {"cpu", "cpuset"} - set(have)
            if missing:
                raise BenchError(f"cgroup v2 at {CGROUP_FS} offers {' '.join(have) or 'no'} "
                                 f"controllers; {', '.join(sorted(missing))} missing")
            return 2, {"": CGROUP_FS}
        cpu, cpuset = CGROUP_FS / "cpu", CGROUP_FS / "cpuset"
        if (cpu / "cpu.cfs_quota_us").exists() and (cpuset / "cpuset.cpus").exists():
            return 1, {"cpu": cpu, "cpuset": cpuset}
        raise BenchError(f"no cgroup with the cpu and cpuset controllers under {CGROUP_FS} "
                         "(neither cgroup v2 nor v1 cpu and cpuset hierarchies)")

    def describe(self) -> str:
        if self.version == 2:
            return f"cgroup v2 at {CGROUP_FS}: cpu.max, cpuset.cpus"
        return (f"cgroup v1 (cpu and cpuset hierarchies at {self.roots['cpu']}, "
                f"{self.roots['cpuset']}): cpu.cfs_quota_us, cpuset.cpus")

    # ------------------------------------------------------------ where a process is

    def cgroup_of(self, pid: int) -> dict[str, str]:
        """The cgroup of `pid` in each hierarchy, e.g. {"": "/system.slice/x.service"}."""
        found: dict[str, str] = {}
        for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
            number, controllers, path = line.split(":", 2)
            if self.version == 2 and number == "0":
                found[""] = path
            for name in controllers.split(","):
                if name in self.roots:
                    found[name] = path
        return found

    # ------------------------------------------------------------ making and moving

    def make(self, path: str, *, cpus: str | None = None, cpu: float | None = None) -> None:
        """Make top/`path` (and its parents): on cores `cpus`, with `cpu` CPUs at most."""
        parts = path.split("/")
        for depth in range(len(parts) + 1):
            relative = "/".join([self.top, *parts[:depth]])
            if relative in self.made:
                continue
            leaf = depth == len(parts)
            for name, root in self.roots.items():
                directory = root / relative
                if self.version == 2:
                    self._enable(directory.parent)
                try:
                    directory.mkdir()
                except FileExistsError:
                    pass
                except OSError as error:
                    raise BenchError(f"cannot create the cgroup {directory}: {error} (are the "
                                     "machine's cgroups writable here?)") from error
                if name == "cpuset":  # v1: a new cpuset has no cores and no memory nodes
                    parent = directory.parent
                    _write(directory / "cpuset.cpus",
                           cpus if leaf and cpus else (parent / "cpuset.cpus").read_text().strip())
                    _write(directory / "cpuset.mems", (parent / "cpuset.mems").read_text().strip())
            self.made.append(relative)
        self._limit(path, cpus, cpu)

    def _enable(self, directory: Path) -> None:
        """v2: the cpu and cpuset controllers for the children of `directory`."""
        control = directory / "cgroup.subtree_control"
        have = control.read_text().split()
        for name in ("cpuset", "cpu"):
            if name not in have:
                _write(control, f"+{name}")
                if directory == CGROUP_FS:
                    self.enabled_at_root.append(name)

    def _limit(self, path: str, cpus: str | None, cpu: float | None) -> None:
        relative = f"{self.top}/{path}"
        quota = max(1000, round(cpu * PERIOD_US)) if cpu else None
        if self.version == 2:
            directory = self.roots[""] / relative
            if cpus:
                _write(directory / "cpuset.cpus", cpus)
            if quota:
                _write(directory / "cpu.max", f"{quota} {PERIOD_US}")
        elif quota:
            directory = self.roots["cpu"] / relative
            _write(directory / "cpu.cfs_period_us", str(PERIOD_US))
            _write(directory / "cpu.cfs_quota_us", str(quota))

    def move(self, pid: int, path: str) -> bool:
        """Move process `pid` (all its threads) into top/`path`; False when it has gone."""
        relative = f"{self.top}/{path}"
        try:
            self.origin.setdefault(relative, self.cgroup_of(pid))
            for root in self.roots.values():
                (root / relative / "cgroup.procs").write_text(str(pid))
        except (ProcessLookupError, FileNotFoundError):
            return False
        except OSError as error:
            if error.errno == errno.ESRCH:  # it exited meanwhile
                return False
            raise BenchError(f"cannot move process {pid} into {relative}: {error}") from error
        return True

    # ------------------------------------------------------------ undoing it

    def restore(self) -> None:
        """Every process of the tree back where its leaf's first process came from (the root
        for a leaf never used), then the tree removed and the root's controllers reset."""
        for relative in reversed(self.made):
            self._empty(relative, self.origin.get(relative, {}))
        for relative in reversed(self.made):
            self._remove(relative)
        self.made.clear()
        for name in self.enabled_at_root:
            with contextlib.suppress(OSError):
                (CGROUP_FS / "cgroup.subtree_control").write_text(f"-{name}")
        self.enabled_at_root.clear()

    def _empty(self, relative: str, origin: dict[str, str]) -> None:
        for name, root in self.roots.items():
            target = root / origin.get(name, "/").lstrip("/") / "cgroup.procs"
            try:
                pids = (root / relative / "cgroup.procs").read_text().split()
            except OSError:
                continue
            for pid in pids:
                try:
                    target.write_text(pid)
                except OSError:  # gone, or that cgroup is gone: the root takes it
                    with contextlib.suppress(OSError):
                        (root / "cgroup.procs").write_text(pid)

    def _remove(self, relative: str) -> None:
        for root in self.roots.values():
            directory = root / relative
            for _attempt in range(20):
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # a process still leaving it
                    self._empty(relative, {})
                    time.sleep(0.1)
            else:
                log(f"  NOTE: could not remove the cgroup {directory}")

    def _clean_leftovers(self) -> None:
        """A tree of an earlier run that was killed: its processes to the root, removed."""
        for root in self.roots.values():
            for top in root.glob(PREFIX + "*"):
                leaves = sorted((p for p in top.rglob("*") if p.is_dir()),
                                key=lambda p: -len(p.parts))
                log(f"  an earlier run's cgroups at {top}: their processes go to the root")
                for directory in [*leaves, top]:
                    relative = str(directory.relative_to(root))
                    self._empty(relative, {})
                    self._remove(relative)
