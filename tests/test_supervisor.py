"""The supervisor restarts children that end, with a growing backoff, and counts it."""

from __future__ import annotations

import asyncio
import logging
import re
import sys

import pytest

from gateway.metrics import Metrics
from gateway.serving.processes import Child
from gateway.serving.supervisor import Supervisor


async def test_a_child_that_keeps_dying_is_restarted_with_growing_delays(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = Metrics()
    child = await asyncio.to_thread(
        Child, "quitter", [sys.executable, "-c", "pass"], log_path=None, env={}
    )
    supervisor = Supervisor(metrics=metrics, poll_s=0.01, first_delay_s=0.05, max_delay_s=0.2)
    supervisor.watch("quitter", child)
    caplog.set_level(logging.INFO, logger="shadowgate.supervisor")
    running = asyncio.create_task(supervisor.run())
    try:
        async with asyncio.timeout(20):
            while metrics.registry.get_sample_value(
                "shadowgate_child_restarts_total", {"component": "quitter"}
            ) != 4:  # fmt: skip
                await asyncio.sleep(0.01)
    finally:
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        await asyncio.to_thread(child.stop)
        await asyncio.to_thread(supervisor.close)
    delays = [float(m) for m in re.findall(r"restarting in ([\d.]+) s", caplog.text)]
    assert delays[:4] == [0.05, 0.1, 0.2, 0.2]
