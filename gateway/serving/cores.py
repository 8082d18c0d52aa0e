"""How many cores this process may really use: `--workers auto`.

`os.cpu_count()` is the host's count. A container sees the host's cores but may be held to
fewer by its CPU affinity (cpuset) and by a CFS quota (`cpu.max` in cgroup v2,
`cpu.cfs_quota_us` in v1); each bound is read, and the smallest wins. A quota of 1.5 CPUs
gives 1: a second process would only be throttled (Go's automaxprocs rounds down too).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

_PROC_CGROUP = Path("/proc/self/cgroup")
_CGROUP_ROOT = Path("/sys/fs/cgroup")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _ancestors(root: Path, relative: str) -> list[Path]:
    """The cgroup directory and each parent up to the mount point."""
    parts = [p for p in relative.split("/") if p]
    return [root.joinpath(*parts[:n]) for n in range(len(parts), -1, -1)]


def _v2_quota(root: Path, relative: str) -> float | None:
    limits = []
    for directory in _ancestors(root, relative):
        fields = (_read(directory / "cpu.max") or "").split()
        if len(fields) == 2 and fields[0] != "max":
            limits.append(int(fields[0]) / int(fields[1]))
    return min(limits, default=None)


def _v1_quota(root: Path, controllers: str, relative: str) -> float | None:
    limits = []
    for mount in (root / controllers, root / "cpu", root / "cpu,cpuacct"):
        for directory in _ancestors(mount, relative):
            quota, period = (
                _read(directory / "cpu.cfs_quota_us"),
                _read(directory / "cpu.cfs_period_us"),
            )
            if quota and period and int(quota) > 0:
                limits.append(int(quota) / int(period))
        if limits:
            break
    return min(limits, default=None)


def cpu_quota(*, proc_cgroup: Path = _PROC_CGROUP, root: Path = _CGROUP_ROOT) -> float | None:
    """The CFS quota of this process's cgroup in CPUs, or None when it has none."""
    text = _read(proc_cgroup)
    if text is None:
        return None
    limits = []
    for line in text.splitlines():
        hierarchy, controllers, relative = [*line.split(":", 2), "", ""][:3]
        if hierarchy == "0" and not controllers:
            limits.append(_v2_quota(root, relative))
        elif "cpu" in controllers.split(","):
            limits.append(_v1_quota(root, controllers, relative))
    return min((limit for limit in limits if limit is not None), default=None)


def available_cores(*, proc_cgroup: Path = _PROC_CGROUP, root: Path = _CGROUP_ROOT) -> int:
    """Cores this process may use: its affinity, bounded by its cgroup's CPU quota; at least 1."""
    cores = len(os.sched_getaffinity(0))
    quota = cpu_quota(proc_cgroup=proc_cgroup, root=root)
    if quota is not None:
        cores = min(cores, math.floor(quota))
    return max(1, cores)
