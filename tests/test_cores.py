"""`--workers auto`: the cores a process may use, bounded by its affinity and cgroup quota."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.cli import build_parser
from gateway.serving.cores import available_cores, cpu_quota


def cgroup_tree(root: Path, files: dict[str, str], proc: str) -> Path:
    """A fake /sys/fs/cgroup under `root` and the /proc/self/cgroup that points into it."""
    for relative, text in files.items():
        path = root / "fs" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "fs").mkdir(exist_ok=True)
    (root / "cgroup").write_text(proc)
    return root / "cgroup"


@pytest.mark.parametrize(
    ("files", "proc", "quota"),
    [
        # cgroup v2: the tightest cpu.max on the way up to the root.
        ({"cpu.max": "max 100000\n", "pod/cpu.max": "250000 100000\n",
          "pod/app/cpu.max": "max 100000\n"}, "0::/pod/app\n", 2.5),
        ({"cpu.max": "max 100000\n"}, "0::/\n", None),
        # cgroup v1 with the cpu controller mounted together with cpuacct.
        ({"cpu,cpuacct/app/cpu.cfs_quota_us": "150000\n",
          "cpu,cpuacct/app/cpu.cfs_period_us": "100000\n"},
         "4:memory:/app\n2:cpu,cpuacct:/app\n", 1.5),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"},
         "1:cpu:/\n0::/\n", None),
        # No cgroup files at all (not Linux's layout, or hidden): no quota.
        ({}, "0::/\n", None),
    ],
)  # fmt: skip
def test_cpu_quota_is_read_from_cgroup_v1_and_v2(
    tmp_path: Path, files: dict[str, str], proc: str, quota: float | None
) -> None:
    proc_cgroup = cgroup_tree(tmp_path, files, proc)
    assert cpu_quota(proc_cgroup=proc_cgroup, root=tmp_path / "fs") == quota


@pytest.mark.parametrize(("cpu_max", "expected"), [("150000 100000", 1), ("50000 100000", 1)])
def test_a_quota_caps_the_affinity_rounding_down_but_never_below_one(
    tmp_path: Path, cpu_max: str, expected: int
) -> None:
    proc_cgroup = cgroup_tree(tmp_path, {"cpu.max": cpu_max}, "0::/\n")
    assert available_cores(proc_cgroup=proc_cgroup, root=tmp_path / "fs") == expected


def test_without_a_quota_the_affinity_decides(tmp_path: Path) -> None:
    proc_cgroup = cgroup_tree(tmp_path, {"cpu.max": "max 100000"}, "0::/\n")
    cores = available_cores(proc_cgroup=proc_cgroup, root=tmp_path / "fs")
    assert cores == len(os.sched_getaffinity(0))


@pytest.mark.parametrize("value", ["0", "-2", "many"])
def test_workers_must_be_a_positive_number_or_auto(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["serve", "--config", "c.yaml", "--workers", value])
    assert exited.value.code == 2
    assert "must be a positive number or auto" in capsys.readouterr().err


def test_workers_auto_is_the_usable_cores() -> None:
    args = build_parser().parse_args(["serve", "--config", "c.yaml", "--workers", "auto"])
    assert args.workers == available_cores()
