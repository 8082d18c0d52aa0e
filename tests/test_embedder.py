"""The ONNX embedder with the real all-MiniLM-L6-v2 model, compiled to mixed int8."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from gateway.config import ScoringConfig
from gateway.errors import ModelNotFoundError
from scoring.embedder import Embedder


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder(ScoringConfig(threads=1))


def test_vectors_are_unit_length_and_meaningful(embedder: Embedder) -> None:
    vectors = embedder.embed(
        [
            "The cat sits on the mat.",
            "A cat is sitting on a mat.",
            "Quarterly revenue grew by twelve percent.",
        ]
    )
    assert vectors.shape == (3, embedder.dimension)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similar, different = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert similar > 0.8
    assert different < 0.3


def test_batch_order_and_padding_do_not_change_vectors(embedder: Embedder) -> None:
    texts = ["short", "a somewhat longer sentence about databases and indexes", "mid length text"]
    alone = np.stack([Embedder(ScoringConfig(cache_size=0)).embed([t])[0] for t in texts])
    together = Embedder(ScoringConfig(cache_size=0)).embed(texts[::-1])[::-1]
    assert np.allclose(alone, together, atol=1e-4)


def test_a_change_at_the_end_of_a_long_answer_moves_the_embedding(embedder: Embedder) -> None:
    body = " ".join(f"Step {i}: check the configuration of service {i}." for i in range(80))
    same_start = [body + " Finally, restart the server.", body + " Finally, delete all data."]
    vectors = embedder.embed(same_start)
    assert vectors[0] @ vectors[1] < 0.9999


def test_an_answer_s_ending_weighs_about_as_much_as_its_opening(embedder: Embedder) -> None:
    # Two equal windows over ~300 tokens: the opening and the ending each sit in one window
    # of the same width, so changing either moves the vector about as much. (Two full
    # 256-token windows count the middle twice: there the ending moved it 0.8x as much.)
    middle = " ".join(
        "Readiness tells the load balancer when to send traffic to a new instance, and the "
        "pool keeps connections warm between requests."
        for _ in range(12)
    )
    opening, ending = "Restart the server first.", "Finally, restart the server."
    swap = "Delete all customer data now."
    base, changed_start, changed_end = embedder.embed(
        [f"{opening} {middle} {ending}", f"{swap} {middle} {ending}", f"{opening} {middle} {swap}"]
    )
    assert len(embedder._windows(embedder._tokenizer.encode(middle).ids)) == 2
    moved_by_start = 1 - base @ changed_start
    moved_by_end = 1 - base @ changed_end
    assert moved_by_end >= 0.9 * moved_by_start, (moved_by_start, moved_by_end)


@pytest.mark.parametrize(("tokens", "windows"), [(254, 1), (255, 2), (400, 2), (478, 2), (479, 3)])
def test_long_texts_take_the_fewest_equal_windows_that_cover_them(
    embedder: Embedder, tokens: int, windows: int
) -> None:
    ids = list(range(1000, 1000 + tokens))
    layout = embedder._windows(ids)
    assert len(layout) == windows
    assert len({len(w) for w in layout}) == 1  # one width: each weighs the same
    assert all(len(w) <= 256 and w[0] == 101 and w[-1] == 102 for w in layout)
    assert {t for w in layout for t in w[1:-1]} == set(ids)
    # Neighbours share at least max_tokens - window_stride tokens (254 - 224 = 30) ...
    for left, right in itertools.pairwise(layout):
        assert len(set(left[1:-1]) & set(right[1:-1])) >= 30
    # ... and no wider than that needs: a 400-token text is not two windows of 254.
    if windows > 1:
        assert len(layout[0]) - 2 <= -(-(tokens + (windows - 1) * 30) // windows)


def test_attention_nan_guards_are_dropped_without_changing_vectors() -> None:
    from scoring.compile import without_nan_guards
    from scoring.embedder import default_model_path

    source = onnx.load(str(default_model_path()))
    stripped = onnx.load(str(default_model_path()))
    assert without_nan_guards(stripped) == 6
    ops = [node.op_type for node in stripped.graph.node]
    assert "IsNaN" in [node.op_type for node in source.graph.node]
    assert "IsNaN" not in ops
    feeds = {
        "input_ids": np.array([[101, 7592, 2088, 102, 0, 0]], dtype=np.int64),
        "attention_mask": np.array([[1, 1, 1, 1, 0, 0]], dtype=np.int64),
    }
    feeds["token_type_ids"] = np.zeros_like(feeds["input_ids"])
    outputs = [
        ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(
            None, feeds
        )[0]
        for m in (source, stripped)
    ]
    assert np.array_equal(outputs[0], outputs[1])


def test_repeated_texts_come_from_the_cache(embedder: Embedder) -> None:
    before = embedder.cache_hits
    first = embedder.embed(["cache me please"])
    second = embedder.embed(["cache me please", "cache me please"])
    assert embedder.cache_hits == before + 2
    assert np.array_equal(first[0], second[1])


def test_missing_model_is_a_clear_error_at_start(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match=r"scoring\.model: no such file"):
        Embedder(ScoringConfig(model=tmp_path / "missing.onnx"))
