"""The reviewer page in a real browser: Debian's Chromium, headless, driven by Playwright,
against a gateway with the embedded Redis and queued items."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import RigFactory
from tests.test_review import TOKEN, enqueue, review_rig
from tests.test_review_blind import blind_items
from tests.test_review_multi import verdict_entries

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
pytestmark = pytest.mark.e2e


@pytest.fixture
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture
async def browser(chromium: str) -> AsyncIterator[Any]:
    playwright_api = pytest.importorskip("playwright.async_api")
    async with playwright_api.async_playwright() as playwright:
        instance = await playwright.chromium.launch(
            executable_path=chromium,
            headless=True,
            args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
            ],
        )  # fmt: skip
        yield instance
        await instance.close()


# Everything the page says, hidden elements included, scripts left out.
PAGE_TEXT = """() => {
  const body = document.body.cloneNode(true);
  body.querySelectorAll("script").forEach((s) => s.remove());
  return body.textContent;
}"""


async def sign_in(page: Any, url: str) -> None:
    await page.goto(url)
    await page.fill("#token", TOKEN)
    await page.fill("#name", "ann")
    await page.click("#login button[type=submit]")


async def test_reviewer_judges_by_keyboard_and_sees_stats_change(
    make_rig: RigFactory, browser: Any
) -> None:
    rig = await review_rig(make_rig)
    await enqueue(rig, [3.0, 2.0, 1.0])
    page = await browser.new_page()
    await sign_in(page, str(rig.control.make_url("/review/")))
    await page.wait_for_selector("#item:not(.hidden)")
    assert await page.text_content("#left-title") == "Production"
    assert await page.text_content("#left") == "Paris."
    assert await page.inner_html("#right") == "<del>Paris.</del><ins>Lyon.</ins>"
    assert "excess 3.000" in (await page.text_content("#scores") or "")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "review-page.png"), full_page=True)

    await page.keyboard.press("1")
    await page.wait_for_selector("#message:has-text('Saved: regression')")
    await page.wait_for_selector("#stats:has-text('done 1')")
    await page.keyboard.press("n")
    await page.keyboard.type("wrong city")
    await page.keyboard.press("Escape")
    await page.keyboard.press("2")
    await page.wait_for_selector("#stats:has-text('done 2')")
    await page.keyboard.press("s")
    await page.wait_for_selector("#message:has-text('Skipped')")
    await page.keyboard.press("3")
    await page.wait_for_selector("#empty:not(.hidden)")
    await page.wait_for_selector("#stats:has-text('improvement 1')")
    stats = await (await rig.control.get("/review/stats", headers={
        "Authorization": f"Bearer {TOKEN}", "x-reviewer": "ann"})).json()  # fmt: skip
    assert stats["verdicts"] == {"regression": 1, "acceptable": 1, "improvement": 1}
    await page.keyboard.press("?")
    await page.wait_for_selector("#help.show")


async def test_page_names_production_and_candidate_models(
    make_rig: RigFactory, browser: Any
) -> None:
    rig = await review_rig(make_rig)
    await enqueue(rig, [1.0], models=("gpt-4o", "gpt-4.1"))
    page = await browser.new_page()
    await sign_in(page, str(rig.control.make_url("/review/")))
    await page.wait_for_selector("#item:not(.hidden)")
    assert await page.text_content("#left-title") == "Production (gpt-4o)"
    assert await page.text_content("#right-title") == "Candidate (gpt-4.1), changes highlighted"


async def test_page_shows_the_empty_queue_and_a_refused_late_verdict(
    make_rig: RigFactory, browser: Any
) -> None:
    rig = await review_rig(make_rig, lease_s=1.0)
    page = await browser.new_page()
    await sign_in(page, str(rig.control.make_url("/review/")))
    await page.wait_for_selector("#empty:not(.hidden)")
    await enqueue(rig, [1.0])
    await page.click("#refresh")
    await page.wait_for_selector("#item:not(.hidden)")
    await page.wait_for_selector("#lease:has-text('expired')", timeout=5000)
    await page.keyboard.press("1")
    await page.wait_for_selector("#message.error:has-text('expired')")


async def test_blind_page_names_no_side_and_stores_the_right_label_for_both_orders(
    make_rig: RigFactory, browser: Any, candidate_sides: list[str]
) -> None:
    # (the candidate's letter, the key pressed, the label that must be stored)
    cases = [
        ("B", "a", "regression"), ("A", "a", "improvement"),
        ("A", "b", "regression"), ("B", "b", "improvement"),
        ("A", "t", "acceptable"), ("B", "x", "acceptable"),
    ]  # fmt: skip
    sides = [side for side, _, _ in cases]
    rig = await blind_items(
        make_rig, candidate_sides, sides, flags=["refusal"], models=("gpt-4o", "gpt-4.1")
    )
    page = await browser.new_page()
    await sign_in(page, str(rig.control.make_url("/review/")))
    for n, (side, key, _) in enumerate(cases):
        await page.wait_for_selector(f"#progress:has-text('you: {n} judged')")
        text = (await page.evaluate(PAGE_TEXT)).lower()
        assert "candidate" not in text and "production" not in text
        assert "gpt-4" not in text  # a model name would tell the sides apart
        assert await page.text_content("#left-title") == "Answer A"
        assert await page.text_content("#left") == ("Lyon." if side == "A" else "Paris.")
        assert await page.text_content("#evidence") == f"{side} contains a refusal"
        assert "regression" not in (await page.text_content("#stats") or "")
        if n == 0:
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "review-page-blind.png"), full_page=True)
        await page.keyboard.press(key)
    await page.wait_for_selector("#empty:not(.hidden)")
    await page.wait_for_selector(f"#progress:has-text('you: {len(cases)} judged')")
    stored = [orjson.loads(fields[b"data"]) for fields in await verdict_entries(rig)]
    choices = {"a": "A", "b": "B", "t": "tie", "x": "both_bad"}
    assert [(v["choice"], v["label"]) for v in stored] == [
        (choices[key], label) for _, key, label in cases
    ]
