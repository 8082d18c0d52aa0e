"""Request targets that are not a path: absolute-form is served as its path (and mirrored),
the other forms are refused; every one is counted."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from tests.conftest import Rig, RigFactory
from tests.test_shadow import chat_body, read_pairs


async def send_raw(rig: Rig, head: bytes, body: bytes = b"") -> bytes:
    port = rig.client.server.port
    assert port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
        await writer.drain()
        return await reader.read()
    finally:
        writer.close()


async def test_absolute_form_target_is_served_and_mirrored_as_its_path(
    make_rig: RigFactory,
) -> None:
    rig = await make_rig(traffic={"shadow_percent": 100}, shadow={"noise_percent": 0})
    answer = await send_raw(
        rig,
        b"POST http://api.example.com/v1/chat/completions?trace=a%20b HTTP/1.1\r\n"
        b"Host: api.example.com\r\nContent-Type: application/json\r\n",
        chat_body(),
    )
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert rig.production.seen[-1].path_qs == "/v1/chat/completions?trace=a%20b"
    (pair,) = await read_pairs(rig, 1)
    assert pair.route == "/v1/chat/completions"
    assert pair.candidate.status == 200
    assert rig.candidate.seen[-1].path_qs == "/v1/chat/completions?trace=a%20b"
    assert rig.metric("shadowgate_request_targets_total", form="absolute") == 1
    assert rig.metric("shadowgate_shadow_total", outcome="sent") == 1


async def test_absolute_form_without_a_path_goes_to_the_root(make_rig: RigFactory) -> None:
    rig = await make_rig()
    answer = await send_raw(rig, b"GET https://api.example.com HTTP/1.1\r\nHost: x\r\n")
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert rig.production.seen[-1].path_qs == "/"


@pytest.mark.parametrize(
    ("request_line", "form"),
    [
        (b"CONNECT api.example.com:443 HTTP/1.1\r\n", "authority"),
        (b"OPTIONS * HTTP/1.1\r\n", "asterisk"),
    ],
    ids=["connect", "options_asterisk"],
)
async def test_target_that_is_not_a_path_is_refused_with_400(
    make_rig: RigFactory, request_line: bytes, form: str
) -> None:
    rig = await make_rig()
    answer = await send_raw(rig, request_line + b"Host: api.example.com\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert orjson.loads(body)["error"]["code"] == "invalid_request_target"
    assert not rig.production.seen
    assert rig.metric("shadowgate_request_targets_total", form=form) == 1
