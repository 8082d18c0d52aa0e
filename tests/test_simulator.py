"""The simulated model server: speaks OpenAI well enough for the real `openai` client, answers
like a model with a behaviour profile, and obeys the fault headers the gateway tests use."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import openai
import orjson
import pytest
from aiohttp.test_utils import TestClient

from gateway.records import Exchange, PairRecord, ScoreRecord
from gateway.sim.simulator import PROFILES, SIM_STATE, SimProfile, build_app, start
from scoring.llm_judge.prompt import build_messages, parse_verdict

Client = TestClient[Any, Any]
QUESTION = "Explain what a Kubernetes readiness probe is for."
MESSAGES: Any = [{"role": "user", "content": QUESTION}]
REFUND = "How do I get a refund for an order that arrived damaged?"
CHAT = "/v1/chat/completions"


def with_messages(**extra: Any) -> bytes:
    return orjson.dumps({"messages": MESSAGES, **extra})


async def make(aiohttp_client: Any, **settings: Any) -> Client:
    profile = SimProfile(name="test", model="sim-model", seed=3, **settings)
    client: Client = await aiohttp_client(build_app(profile))
    return client


async def chat(sim: Client, content: str = QUESTION, **extra: Any) -> dict[str, Any]:
    body = {"model": "m", "messages": [{"role": "user", "content": content}], **extra}
    resp = await sim.post("/v1/chat/completions", json=body)
    assert resp.status == 200, await resp.text()
    doc: dict[str, Any] = await resp.json()
    return doc


def answer(doc: dict[str, Any]) -> str:
    text: str = doc["choices"][0]["message"]["content"]
    return text


async def test_real_openai_client_reads_chat_whole_and_streamed(aiohttp_client: Any) -> None:
    sim = await make(aiohttp_client)
    client = openai.AsyncOpenAI(base_url=str(sim.make_url("/v1")), api_key="k", max_retries=0)
    whole = await client.chat.completions.create(model="m", messages=MESSAGES)
    text = whole.choices[0].message.content or ""
    assert whole.model == "sim-model"
    assert whole.choices[0].finish_reason == "stop"
    assert whole.usage is not None
    assert whole.usage.completion_tokens == len(text.split())
    assert whole.usage.prompt_tokens == len(QUESTION.split())

    stream = await client.chat.completions.create(
        model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage == whole.usage
    await client.close()


@pytest.mark.parametrize("stream", [False, True])
async def test_real_openai_client_reads_legacy_completions_cut_by_max_tokens(
    aiohttp_client: Any, stream: bool
) -> None:
    sim = await make(aiohttp_client)
    client = openai.AsyncOpenAI(base_url=str(sim.make_url("/v1")), api_key="k", max_retries=0)
    if stream:
        events = await client.completions.create(
            model="m", prompt=QUESTION, max_tokens=5, stream=True
        )
        chunks = [chunk async for chunk in events]
        text = "".join(c.choices[0].text for c in chunks)
        finish = chunks[-1].choices[0].finish_reason
    else:
        done = await client.completions.create(model="m", prompt=QUESTION, max_tokens=5)
        text, finish = done.choices[0].text, done.choices[0].finish_reason
    assert len(text.split()) == 5
    assert finish == "length"
    await client.close()


async def test_each_token_is_its_own_event_paced_by_tokens_per_second(
    aiohttp_client: Any,
) -> None:
    sim = await make(aiohttp_client, first_token_ms=30, tokens_per_s=200)
    body = {"messages": MESSAGES, "stream": True, "max_tokens": 10}
    sent = time.monotonic()
    resp = await sim.post("/v1/chat/completions", json=body)
    arrivals: list[float] = []
    events: list[bytes] = []
    async for line in resp.content:
        if line.startswith(b"data: "):
            arrivals.append(time.monotonic())
            events.append(line[6:].strip())
    assert events[-1] == b"[DONE]"
    contents = [orjson.loads(e)["choices"][0]["delta"].get("content") for e in events[1:-2]]
    assert len(contents) == 10
    assert all(c is not None and len(c.split()) == 1 for c in contents)
    # Lower bounds only: the server sleeps at least this long, a busy machine only adds to it.
    assert arrivals[0] - sent >= 0.03
    assert arrivals[-1] - arrivals[1] >= 9 / 200 * 0.9


async def test_same_prompt_same_answer_without_variation_whatever_the_seed(
    aiohttp_client: Any,
) -> None:
    sim = await make(aiohttp_client)
    other: Client = await aiohttp_client(
        build_app(SimProfile(name="other", model="other", seed=99))
    )
    first, second, elsewhere = await chat(sim), await chat(sim), await chat(other)
    assert answer(first) == answer(second) == answer(elsewhere)


async def test_variation_rewords_a_few_sentences_but_keeps_the_answer(
    aiohttp_client: Any,
) -> None:
    plain = answer(await chat(await make(aiohttp_client)))
    noisy = await make(aiohttp_client, variation=0.3)
    answers = [answer(await chat(noisy)) for _ in range(10)]
    assert len(set(answers)) > 1
    base = set(plain.split())
    for text in answers:
        assert len(base & set(text.split())) / len(base | set(text.split())) > 0.6


@pytest.mark.parametrize(
    "question",
    [
        QUESTION,
        "Write a Python function that checks whether a string is a palindrome.",
        "Give me a three-day itinerary for Lisbon on a budget.",
        "Suggest a name for a coffee shop that also sells books.",
        "hi",
    ],
)
async def test_answers_are_realistic_in_length_and_quote_the_question(
    aiohttp_client: Any, question: str
) -> None:
    text = answer(await chat(await make(aiohttp_client), question))
    assert 30 <= len(text.split()) <= 200
    assert question.rstrip(".?") in text


async def test_scrubbed_copy_of_a_prompt_gets_the_same_answer(aiohttp_client: Any) -> None:
    # The candidate sees the scrubbed prompt: otherwise every PII prompt would look divergent.
    sim = await make(aiohttp_client)
    values = {"Maria Lopez": "<PERSON_1>", "4111 1111 1111 1111": "<CARD_1>",
              "maria@example.com": "<EMAIL_1>"}  # fmt: skip
    raw = (
        "Hi, I'm Maria Lopez. My card 4111 1111 1111 1111 was charged twice, mail maria@example.com"
    )
    scrubbed = raw
    for value, placeholder in values.items():
        scrubbed = scrubbed.replace(value, placeholder)
    raw_answer = answer(await chat(sim, raw))
    for value, placeholder in values.items():
        raw_answer = raw_answer.replace(value, placeholder)
    assert raw_answer == answer(await chat(sim, scrubbed))


async def test_candidate_answers_differently_only_on_its_topics(aiohttp_client: Any) -> None:
    quiet = {"refuse_percent": 0.0, "truncate_percent": 0.0, "variation": 0.0,
             "first_token_ms": 0.0, "tokens_per_s": 0.0}  # fmt: skip
    prod: Client = await aiohttp_client(build_app(PROFILES["production"].model_copy(update=quiet)))
    cand: Client = await aiohttp_client(build_app(PROFILES["candidate"].model_copy(update=quiet)))
    assert answer(await chat(prod)) == answer(await chat(cand))
    ours, theirs = answer(await chat(prod, REFUND)), answer(await chat(cand, REFUND))
    shared = set(ours.split(". ")[1:]) & set(theirs.split(". ")[1:])
    assert not shared


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"refuse_percent": 100}, ("stop", "I'm sorry, but I can't help with that.")),
        ({"truncate_percent": 100}, ("length", None)),
        ({}, ("stop", None)),
    ],
)
async def test_profile_behaviours_apply_to_every_request_at_100_percent(
    aiohttp_client: Any, settings: dict[str, float], expected: tuple[str, str | None]
) -> None:
    plain = answer(await chat(await make(aiohttp_client)))
    doc = await chat(await make(aiohttp_client, **settings))
    finish, text = expected
    assert doc["choices"][0]["finish_reason"] == finish
    if text is not None:
        assert answer(doc) == text
    elif finish == "length":
        assert plain.startswith(answer(doc))
        assert len(answer(doc).split()) < len(plain.split())


async def test_refusals_and_errors_come_at_the_configured_rates(aiohttp_client: Any) -> None:
    sim = await make(aiohttp_client, refuse_percent=20, error_rate=0.2)
    statuses, refusals = [], 0
    for _ in range(300):
        body = {"messages": MESSAGES}
        resp = await sim.post("/v1/chat/completions", json=body)
        statuses.append(resp.status)
        doc = await resp.json()
        if resp.status == 500:
            assert doc["error"]["type"] == "server_error"
        elif answer(doc).startswith("I'm sorry"):
            refusals += 1
    errors = statuses.count(500)
    # Binomial bounds at about five standard deviations: never flaky, still catches a wrong rate.
    assert 30 <= errors <= 90
    assert 20 <= refusals <= 80


async def test_json_object_format_returns_a_json_object(aiohttp_client: Any) -> None:
    doc = await chat(await make(aiohttp_client), response_format={"type": "json_object"})
    parsed = orjson.loads(answer(doc))
    assert isinstance(parsed, dict)
    assert parsed["answer"]


@pytest.mark.parametrize(
    ("path", "body", "headers", "status"),
    [
        pytest.param(CHAT, b"{not json", {}, 400, id="malformed-json"),
        pytest.param(CHAT, b"[1, 2]", {}, 400, id="not-an-object"),
        pytest.param(CHAT, b'{"model": "m"}', {}, 400, id="no-messages"),
        pytest.param(CHAT, b'{"messages": []}', {}, 400, id="empty-messages"),
        pytest.param("/v1/completions", b'{"model": "m"}', {}, 400, id="no-prompt"),
        pytest.param(CHAT, with_messages(n=2), {}, 400, id="n-above-1"),
        pytest.param(CHAT, with_messages(max_tokens="9"), {}, 400, id="max-tokens-not-int"),
        pytest.param(CHAT, with_messages(), {"x-sim-fail": "503"}, 503, id="forced-503"),
        pytest.param(CHAT, with_messages(), {"x-sim-fail": "abc"}, 400, id="forced-bad-status"),
        pytest.param("/v1/embeddings", b"{}", {}, 404, id="unknown-path"),
    ],
)
async def test_bad_requests_and_forced_failures_get_openai_error_bodies(
    aiohttp_client: Any, path: str, body: bytes, headers: dict[str, str], status: int
) -> None:
    sim = await make(aiohttp_client)
    resp = await sim.post(path, data=body, headers=headers)
    assert resp.status == status
    error = (await resp.json())["error"]
    assert error["message"]
    assert error["type"] in ("invalid_request_error", "server_error")


async def test_garbage_header_answers_200_with_a_body_that_is_not_json(
    aiohttp_client: Any,
) -> None:
    sim = await make(aiohttp_client)
    resp = await sim.post(
        "/v1/chat/completions", json={"messages": MESSAGES}, headers={"x-sim-garbage": "1"}
    )
    assert resp.status == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(await resp.read())


@pytest.mark.parametrize("stream", [False, True])
async def test_close_mid_stream_cuts_the_connection_after_some_data(
    aiohttp_client: Any, stream: bool
) -> None:
    sim = await make(aiohttp_client)
    body = {"messages": MESSAGES, "stream": stream}
    resp = await sim.post(
        "/v1/chat/completions", json=body, headers={"x-sim-close-mid-stream": "1"}
    )
    assert resp.status == 200
    received: list[bytes] = []

    async def read_all() -> None:
        async for data in resp.content.iter_any():
            received.append(data)

    with pytest.raises(aiohttp.ClientPayloadError):
        await read_all()
    assert received
    assert b"[DONE]" not in b"".join(received)


async def test_hang_never_answers_and_still_counts_the_request(aiohttp_client: Any) -> None:
    sim = await make(aiohttp_client)
    with pytest.raises(asyncio.TimeoutError):
        await sim.post(
            "/v1/chat/completions",
            json={"messages": MESSAGES},
            headers={"x-sim-hang": "1"},
            timeout=aiohttp.ClientTimeout(total=0.2),
        )
    assert sim.app is not None
    assert sim.app[SIM_STATE].requests == 1


async def test_stats_show_what_reached_the_server(aiohttp_client: Any) -> None:
    sim = await make(aiohttp_client)
    await sim.post(
        "/v1/chat/completions",
        json={"messages": MESSAGES},
        headers={"Authorization": "Bearer user-key"},
    )
    await sim.get("/anything/else?x=1")
    await sim.get("/healthz")
    stats = await (await sim.get("/_sim/stats")).json()
    assert stats["requests"] == 2
    first, second = stats["last"]
    assert first["headers"]["Authorization"] == "Bearer user-key"
    assert orjson.loads(first["body"]) == {"messages": MESSAGES}
    assert (second["method"], second["path"]) == ("GET", "/anything/else?x=1")


async def test_stats_keep_the_last_fifty_and_reset(aiohttp_client: Any) -> None:
    sim = await make(aiohttp_client)
    for i in range(55):
        await sim.get(f"/v1/models?i={i}")
    stats = await (await sim.get("/_sim/stats")).json()
    assert stats["requests"] == 55
    assert stats["last"][0]["path"] == "/v1/models?i=5"
    assert len(stats["last"]) == 50
    assert (await sim.delete("/_sim/stats")).status == 204
    assert (await (await sim.get("/_sim/stats")).json())["requests"] == 0


@pytest.mark.parametrize("name", sorted(PROFILES))
async def test_every_builtin_profile_answers_and_lists_its_model(
    aiohttp_client: Any, name: str
) -> None:
    profile = PROFILES[name].model_copy(update={"first_token_ms": 0, "tokens_per_s": 0})
    sim: Client = await aiohttp_client(build_app(profile))
    models = await (await sim.get("/v1/models")).json()
    assert [m["id"] for m in models["data"]] == [profile.model]
    resp = await sim.post("/v1/chat/completions", json={"messages": MESSAGES})
    assert resp.status == 200
    assert (await resp.json())["model"] == profile.model


def test_builtin_profiles_describe_the_demo_roles() -> None:
    production, candidate, fast = PROFILES["production"], PROFILES["candidate"], PROFILES["fast"]
    assert production.variation > 0
    assert production.error_rate == production.refuse_percent == 0
    assert candidate.refuse_percent > 0
    assert {"refund", "billing"} <= set(candidate.diverge_topics)
    assert candidate.first_token_ms > production.first_token_ms
    assert fast.first_token_ms == fast.tokens_per_s == 0


async def test_start_serves_on_a_free_port_and_stops_despite_a_hung_request() -> None:
    runner, port = await start(PROFILES["fast"])
    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{url}/healthz") as resp:
            assert resp.status == 200
        hung = asyncio.create_task(
            session.post(
                f"{url}/v1/chat/completions",
                json={"messages": MESSAGES},
                headers={"x-sim-hang": "1"},
            )
        )
        while runner.app[SIM_STATE].requests < 1:
            await asyncio.sleep(0.01)
        await asyncio.wait_for(runner.cleanup(), timeout=5)
        (outcome,) = await asyncio.gather(hung, return_exceptions=True)
        if isinstance(outcome, aiohttp.ClientResponse):
            assert outcome.status == 503
            outcome.release()
        else:
            assert isinstance(outcome, aiohttp.ClientError)


@pytest.mark.parametrize(
    ("production", "candidate", "label"),
    [
        ("Take 500 mg to 1 g every 4 hours, at most 4 g a day.",
         "Take 5 g every hour, with no daily limit.", "regression"),
        ("Take 500 mg to 1 g every 4 hours.",
         "Every four hours, take five hundred milligrams to one gram.", "acceptable"),
        ("Take it with food.", "Do not take it with food.", "regression"),
        ("You must report a theft to the police.", "You may report a theft to the police.",
         "regression"),
        ("The train leaves at 4:40 pm.", "The train leaves at 16:40.", "acceptable"),
        ("Paris is the capital.", "I'm sorry, but I can't help with that.", "regression"),
        ("I'm sorry, but I can't help with that.", "Paris is the capital.", "improvement"),
        ('{"a": 1, "b": [2, 3]}', '{"b": [2, 3], "a": 1}', "acceptable"),
        ('{"a": 1, "b": [2, 3]}', '{"b": [2, 4], "a": 1}', "regression"),
        ("The deadline is 31 October. Late returns pay a penalty.",
         "The deadline is 31 October. Late returns", "regression"),
    ],
    ids=["dose", "spelled_out", "negation", "modality", "clock", "refusal", "improvement",
         "json_key_order", "json_value", "cut_off"],
)  # fmt: skip
async def test_the_judge_profile_answers_the_judge_prompt_from_the_two_answers(
    aiohttp_client: Any, production: str, candidate: str, label: str
) -> None:
    pair = PairRecord(id="p", ts=0.0, route=CHAT, production=Exchange(status=200, text=production),
                      candidate=Exchange(status=200, text=candidate))  # fmt: skip
    messages = build_messages(pair, ScoreRecord(pair_id="p", ts=0.0, route=CHAT), max_chars=4000)
    sim: Client = await aiohttp_client(build_app(PROFILES["judge"]))
    answers = []
    for _ in range(2):
        resp = await sim.post(CHAT, json={"model": "judge-model", "messages": messages})
        doc = await resp.json()
        answers.append(doc["choices"][0]["message"]["content"])
        assert doc["usage"]["prompt_tokens"] > 0
    assert answers[0] == answers[1]  # deterministic
    parsed = parse_verdict(answers[0])
    assert parsed is not None and parsed[0] == label, answers[0]
