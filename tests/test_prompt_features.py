"""Prompt features for input drift: bins read off the parsed body, counted per arm by every
replica without parsing anything twice."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from gateway.proxy.arm_stats import prompt_counts
from gateway.proxy.prompt_features import PromptFeatures, prompt_features, prompt_text, script
from tests.conftest import RigFactory

CHAT = "/v1/chat/completions"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("How do I reset my password?", "latin"),
        ("Überprüfen Sie bitte die Rechnung für März", "latin"),
        ("Как мне вернуть деньги за заказ?", "cyrillic"),
        ("请帮我写一封邮件", "cjk"),
        ("注文をキャンセルしたいです", "cjk"),
        ("환불은 어떻게 받나요", "cjk"),
        ("كيف يمكنني استرداد أموالي", "arabic"),
        ("मुझे धनवापसी कैसे मिलेगी", "other"),
        ("12345 + 678 = ?", "none"),
        ("", "none"),
    ],
)
def test_script_of_the_user_text(text: str, expected: str) -> None:
    assert script(text) == expected


def test_script_is_read_off_the_start_of_a_long_text() -> None:
    assert script("Привет " * 40 + "hello " * 10_000) == "cyrillic"


@pytest.mark.parametrize(
    ("route", "document", "expected"),
    [
        (
            CHAT,
            {"messages": [{"role": "system", "content": "Be brief. " * 30},
                          {"role": "user", "content": "Что такое PSI?"}], "max_tokens": 200},
            PromptFeatures("301-1000", "cyrillic", CHAT, "65-256"),
        ),
        (
            CHAT,
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"},
                                                       {"type": "image_url", "image_url": {}}]}],
             "max_completion_tokens": 5000},
            PromptFeatures("0-100", "latin", CHAT, "4097-16384"),
        ),
        (
            "/v1/completions",
            {"prompt": ["写一首诗", "x" * 40_000], "max_tokens": True},
            PromptFeatures(">30000", "latin", "/v1/completions", "unset"),
        ),
        (
            "/v1/responses",
            {"instructions": "Answer in English.", "max_output_tokens": 64,
             "input": [{"role": "user", "content": [{"type": "input_text", "text": "مرحبا"}]}]},
            PromptFeatures("0-100", "arabic", "/v1/responses", "0-64"),
        ),
        ("/v1/completions", {"prompt": [101, 102, 103]}, PromptFeatures("0-100", "none",
                                                                        "/v1/completions",
                                                                        "unset")),
    ],
)  # fmt: skip
def test_features_of_each_api_shape(
    route: str, document: dict[str, Any], expected: PromptFeatures
) -> None:
    assert prompt_features(route, document) == expected


def test_prompt_length_counts_every_message_and_the_language_the_last_user_one() -> None:
    document = {
        "messages": [
            {"role": "user", "content": "Bonjour"},
            {"role": "assistant", "content": "Здравствуйте"},
            {"role": "user", "content": "Merci"},
        ]
    }
    assert prompt_text(document) == (len("Bonjour") + len("Здравствуйте") + len("Merci"), "Merci")


async def test_each_arm_counts_the_prompts_it_served(make_rig: RigFactory) -> None:
    rig = await make_rig(traffic={"canary_percent": 50})
    since = time.time()
    sent = {"production": 0, "canary": 0}
    for i in range(20):
        body = {"model": "m", "user": f"u{i}", "max_tokens": 100,
                "messages": [{"role": "user", "content": "Сколько стоит доставка?"}]}  # fmt: skip
        resp = await rig.client.post(CHAT, data=orjson.dumps(body),
                                     headers={"Content-Type": "application/json"})  # fmt: skip
        await resp.read()
        sent[resp.headers["x-shadowgate-arm"]] += 1
    # Neither a malformed body nor a route whose body is never read is counted.
    await (await rig.client.post(CHAT, data=b"{", headers={"Content-Type": "application/json"}))\
        .read()  # fmt: skip
    await (await rig.client.post("/v1/embeddings", json={"input": "hello"})).read()
    await rig.gateway.arm_stats.flush()
    window = await rig.gateway.arm_stats.window(since)
    assert sent["production"] and sent["canary"]
    for arm, count in sent.items():
        features = prompt_counts(window, arm)
        assert features["language"] == {"cyrillic": count}
        assert features["route"] == {CHAT: count}
        assert features["max_tokens"] == {"65-256": count}
        assert features["length"] == {"0-100": count}
    both = prompt_counts(window, "production", "canary")
    assert both["language"]["cyrillic"] == 20
    assert window["production:requests"] + window["canary:requests"] == 22
    assert sum(v for k, v in window.items() if ":ttfb:" in k) == 22
