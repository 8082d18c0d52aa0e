"""The simulated model server speaks OpenAI well enough for the real `openai` client."""

from __future__ import annotations

from typing import Any

import openai
import orjson
import pytest
from aiohttp.test_utils import TestClient

from gateway.simulator import PROFILES, SimProfile, build_app

Client = TestClient[Any, Any]
MESSAGES: Any = [{"role": "user", "content": "Explain what a Kubernetes readiness probe is for."}]


async def make(aiohttp_client: Any, **settings: Any) -> Client:
    profile = SimProfile(name="t", model="sim", seed=3, **settings)
    client: Client = await aiohttp_client(build_app(profile))
    return client


async def test_real_openai_client_streaming_and_not(aiohttp_client: Any) -> None:
    sim = await make(aiohttp_client)
    client = openai.AsyncOpenAI(base_url=str(sim.make_url("/v1")), api_key="k", max_retries=0)
    completion = await client.chat.completions.create(model="sim", messages=MESSAGES)
    text = completion.choices[0].message.content or ""
    assert len(text.split()) >= 10
    assert completion.usage is not None
    assert completion.usage.completion_tokens == len(text.split())
    stream = await client.chat.completions.create(
        model="sim", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert chunks[-1].usage is not None
    legacy = await client.completions.create(model="sim", prompt="Say hello", max_tokens=3)
    assert legacy.choices[0].finish_reason == "length"
    assert len(legacy.choices[0].text.split()) == 3
    await client.close()


async def test_same_prompt_same_answer_without_variation(aiohttp_client: Any) -> None:
    sim = await make(aiohttp_client)
    body = {"messages": MESSAGES}
    first = await (await sim.post("/v1/chat/completions", json=body)).json()
    second = await (await sim.post("/v1/chat/completions", json=body)).json()
    assert first["choices"][0]["message"] == second["choices"][0]["message"]


async def test_variation_rewords_some_answers(aiohttp_client: Any) -> None:
    sim = await make(aiohttp_client, variation=1.0)
    answers = set()
    for _ in range(10):
        doc = await (await sim.post("/v1/chat/completions", json={"messages": MESSAGES})).json()
        answers.add(doc["choices"][0]["message"]["content"])
    assert len(answers) > 1


async def test_candidate_profile_diverges_on_its_topics(aiohttp_client: Any) -> None:
    prod: Client = await aiohttp_client(build_app(PROFILES["production"]))
    cand: Client = await aiohttp_client(
        build_app(PROFILES["candidate"].model_copy(update={"refuse_percent": 0.0}))
    )
    body = {"messages": [{"role": "user", "content": "How do I get a refund for my order?"}]}
    a = await (await prod.post("/v1/chat/completions", json=body)).json()
    b = await (await cand.post("/v1/chat/completions", json=body)).json()
    assert a["choices"][0]["message"]["content"] != b["choices"][0]["message"]["content"]


async def test_refusals_follow_the_profile(aiohttp_client: Any) -> None:
    sim = await make(aiohttp_client, refuse_percent=100)
    doc = await (await sim.post("/v1/chat/completions", json={"messages": MESSAGES})).json()
    assert doc["choices"][0]["message"]["content"].startswith("I'm sorry")


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"{not json", {}, 400),
        (b'{"model": "x"}', {}, 400),
        (orjson.dumps({"messages": MESSAGES}), {"x-sim-fail": "503"}, 503),
    ],
)
async def test_bad_requests_and_forced_failures(
    aiohttp_client: Any, body: bytes, headers: dict[str, str], status: int
) -> None:
    sim = await make(aiohttp_client)
    resp = await sim.post("/v1/chat/completions", data=body, headers=headers)
    assert resp.status == status
    assert "message" in (await resp.json())["error"]


async def test_stats_record_what_arrived(aiohttp_client: Any) -> None:
    sim = await make(aiohttp_client)
    await sim.post("/v1/chat/completions", json={"messages": MESSAGES}, headers={"X-Probe": "1"})
    stats = await (await sim.get("/_sim/stats")).json()
    assert stats["requests"] == 1
    assert stats["last"][0]["headers"]["X-Probe"] == "1"
