"""The reviewer page in a real browser: Debian's Chromium, headless, driven by Playwright,
against a gateway with the embedded Redis and queued items."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from scoring.signals.detect import Detector
from tests.conftest import RigFactory
from tests.test_review import TOKEN, enqueue, review_rig
from tests.test_review_blind import blind_items
from tests.test_review_evidence import DOSE, OVERDOSE, REFUSAL, enqueue_items, review_item
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
    rig = await blind_items(make_rig, candidate_sides, sides, flags=["refusal"])
    page = await browser.new_page()
    await sign_in(page, str(rig.control.make_url("/review/")))
    for n, (side, key, _) in enumerate(cases):
        await page.wait_for_selector(f"#progress:has-text('you: {n} judged')")
        text = (await page.evaluate(PAGE_TEXT)).lower()
        assert "candidate" not in text and "production" not in text
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


# The text of every highlight in a column.
MARKS = (
    """(id) => [...document.querySelectorAll("#" + id + " mark.ev")].map((m) => m.textContent)"""
)
# Answer text that would run as markup if it ever reached innerHTML.
MARKUP = '<img src=x onerror="document.title=1">'


async def test_changed_values_are_highlighted_in_both_answers_and_listed_in_words(
    make_rig: RigFactory, browser: Any, detector: Detector
) -> None:
    rig = await make_rig(control={"reviewer_token": TOKEN})
    await enqueue_items(rig, [review_item(detector, DOSE + " " + MARKUP, OVERDOSE + " " + MARKUP)])
    page = await browser.new_page()
    await sign_in(page, str(rig.control.make_url("/review/")))
    await page.wait_for_selector("#item:not(.hidden)")

    findings = await page.locator("#findings li").all_text_contents()
    assert findings[:2] == ["number 500 mg → 5 g", "limit 4 g removed"]
    assert not await page.is_hidden("#findings-card")
    left, right = await page.evaluate(MARKS, "left"), await page.evaluate(MARKS, "right")
    assert left[0] == "500 mg" and "4 g" in left and "24 hours" in left
    # The right column is the word diff from the left one, the candidate's own values marked.
    assert right == ["5 g"]
    assert await page.text_content("#right ins mark.ev") == "5 g"
    assert "500 mg" in await page.locator("#right del").all_text_contents()
    assert await page.get_attribute("#left mark.ev >> nth=0", "class") == "ev sev-high"
    assert await page.text_content("#right-title") == "Candidate (changes highlighted)"
    assert await page.is_hidden("#layout-note")
    assert await page.locator("#left img, #right img").count() == 0
    assert MARKUP in (await page.text_content("#left") or "")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "review-page-evidence.png"), full_page=True)
    await page.hover("#findings li >> nth=0")
    assert await page.locator("mark.ev.active").all_text_contents() == ["500 mg", "5 g"]


@pytest.mark.parametrize(
    ("candidate", "flags"),
    [
        (REFUSAL, ["refusal"]),
        ("Ibuprofen is an anti-inflammatory; ask a pharmacist which one suits your stomach "
         "before you buy any of them.", []),
    ],
    ids=["refusal", "unrelated"],
)  # fmt: skip
async def test_answers_that_share_little_are_shown_side_by_side_without_strike_through(
    make_rig: RigFactory, browser: Any, detector: Detector, candidate: str, flags: list[str]
) -> None:
    rig = await make_rig(control={"reviewer_token": TOKEN})
    await enqueue_items(rig, [review_item(detector, DOSE, candidate, flags=flags)])
    page = await browser.new_page()
    await sign_in(page, str(rig.control.make_url("/review/")))
    await page.wait_for_selector("#item:not(.hidden)")

    assert await page.text_content("#left") == DOSE
    assert await page.text_content("#right") == candidate
    assert await page.locator("#right del, #right ins").count() == 0
    assert await page.text_content("#right-title") == "Candidate"
    assert "side by side" in (await page.text_content("#layout-note") or "")
    assert not await page.is_hidden("#layout-note")
    if flags:
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "review-page-refusal.png"), full_page=True)


@pytest.mark.parametrize("candidate_side", ["A", "B"])
async def test_blind_page_highlights_by_letter_and_names_no_side(
    make_rig: RigFactory,
    browser: Any,
    detector: Detector,
    candidate_sides: list[str],
    candidate_side: str,
) -> None:
    candidate_sides.append(candidate_side)
    production_side = "B" if candidate_side == "A" else "A"
    rig = await make_rig(control={"reviewer_token": TOKEN}, review={"mode": "blind"})
    await enqueue_items(rig, [review_item(detector, DOSE, OVERDOSE)])
    page = await browser.new_page()
    await sign_in(page, str(rig.control.make_url("/review/")))
    await page.wait_for_selector("#item:not(.hidden)")

    text = (await page.evaluate(PAGE_TEXT)).lower()
    assert "production" not in text and "candidate" not in text
    values = {production_side: "500 mg", candidate_side: "5 g"}
    findings = await page.locator("#findings li").all_text_contents()
    assert f"number {values['A']} in A, {values['B']} in B" in findings
    assert f"limit 4 g only in {production_side}" in findings
    assert all("→" not in f and "removed" not in f for f in findings)
    # A on the left, plain; B on the right, as the word diff from A.
    left = await page.evaluate(MARKS, "left")
    right = await page.locator("#right ins mark.ev").all_text_contents()
    assert values["A"] in left and values["B"] in right
    assert ("4 g" in left, "4 g" in right) == (production_side == "A", production_side == "B")
    if candidate_side == "B":
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(
            path=str(ARTIFACTS / "review-page-blind-evidence.png"), full_page=True
        )
