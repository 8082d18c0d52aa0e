"""Compiling the shipped model: what runs in int8, what stays fp32, and the on-disk cache."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from gateway.config import ScoringConfig
from scoring._attention import fuse_attention
from scoring.compile import (
    SESSION_DISABLED_OPTIMIZERS,
    cache_key,
    compile_model,
    down_projections,
    load_compiled,
    without_nan_guards,
)
from scoring.embedder import Embedder, default_model_path

ANSWERS = [
    "To reset your password, open Settings, choose Security, and follow the link we email "
    "you. The link expires after thirty minutes, so use it soon; if it has expired, ask for "
    "a new one from the same page. Contact support if the email never arrives.",
    "Connection reuse removes a handshake from every request. Keep the pool's idle timeout "
    "shorter than the server's, retry once on a connection the server closed while idle, "
    "and size the pool from the expected concurrency rather than the default.",
    "Le remboursement est effectué sur le moyen de paiement initial sous cinq jours "
    "ouvrés. Si un double débit apparaît, le second est en général une autorisation en "
    "attente qui disparaît d'elle-même.",
]


@pytest.fixture(scope="module")
def mixed() -> onnx.ModelProto:
    return onnx.load_from_string(
        compile_model(default_model_path(), precision="mixed-int8", fp32_layers=3)
    )


def test_mixed_int8_keeps_the_first_down_projections_in_fp32(mixed: onnx.ModelProto) -> None:
    ops = Counter(node.op_type for node in mixed.graph.node)
    assert ops["IsNaN"] == 0
    assert ops["SkipLayerNormalization"] == 0 and ops["LayerNormalization"] == 13
    assert ops["BiasGelu"] == 6
    # 36 weight MatMuls in six layers: 33 run on int8, the first three FFN outputs in fp32.
    assert ops["MatMulInteger"] + ops["DynamicQuantizeMatMul"] == 33
    assert len(down_projections(mixed)) == 3


def test_fp32_compile_has_no_integer_arithmetic() -> None:
    model = onnx.load_from_string(
        compile_model(default_model_path(), precision="fp32", fp32_layers=3)
    )
    ops = {node.op_type for node in model.graph.node}
    assert not ops & {"MatMulInteger", "DynamicQuantizeMatMul", "DynamicQuantizeLinear"}
    assert len(down_projections(model)) == 6


def test_an_already_integer_model_is_used_as_it_is(mixed: onnx.ModelProto, tmp_path: Path) -> None:
    source = tmp_path / "int8.onnx"
    onnx.save(mixed, str(source))
    again = onnx.load_from_string(compile_model(source, precision="mixed-int8", fp32_layers=0))
    assert len(again.graph.node) == len(mixed.graph.node)


def test_compiled_models_are_cached_by_source_and_recipe(tmp_path: Path) -> None:
    source = default_model_path()
    first = load_compiled(source, precision="fp32", fp32_layers=3, cache_dir=tmp_path)
    key = cache_key(source, precision="fp32", fp32_layers=3)
    cached = tmp_path / f"{key}.onnx"
    assert cached.read_bytes() == first
    cached.write_bytes(b"marker")  # served from the cache from now on, not recompiled
    assert load_compiled(source, precision="fp32", fp32_layers=3, cache_dir=tmp_path) == b"marker"
    assert key != cache_key(source, precision="mixed-int8", fp32_layers=3)
    assert key != cache_key(source, precision="fp32", fp32_layers=2)
    assert not list(tmp_path.glob("*.partial"))


def test_an_unwritable_cache_still_gives_the_model(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    data = load_compiled(
        default_model_path(), precision="fp32", fp32_layers=3, cache_dir=blocked / "models"
    )
    assert onnx.load_from_string(data).graph.node


def test_mixed_int8_agrees_with_fp32_and_does_not_depend_on_batch_mates() -> None:
    exact = Embedder(ScoringConfig(precision="fp32", cache_size=0)).embed(ANSWERS)
    fast = Embedder(ScoringConfig(cache_size=0))
    together = fast.embed(ANSWERS)
    assert np.sum(exact * together, axis=1).min() >= 0.99
    alone = np.stack([fast.embed([text])[0] for text in ANSWERS])
    assert np.array_equal(alone, together)


def test_attention_is_fused_without_changing_vectors_padded_or_not() -> None:
    fused = onnx.load_from_string(
        compile_model(default_model_path(), precision="fp32", fp32_layers=3)
    )
    ops = Counter(node.op_type for node in fused.graph.node)
    assert ops["MultiHeadAttention"] == 6 and ops["Softmax"] == 0
    assert fuse_attention(fused) == 0  # nothing left to fuse: the graph stays as it is

    def session(model: onnx.ModelProto) -> ort.InferenceSession:
        return ort.InferenceSession(
            model.SerializeToString(),
            providers=["CPUExecutionProvider"],
            disabled_optimizers=list(SESSION_DISABLED_OPTIMIZERS),
        )

    unfused = onnx.load(str(default_model_path()))
    without_nan_guards(unfused)
    # Two rows, the first padded: masked keys must not reach the first row's tokens.
    ids = np.array([[101, 7592, 2088, 102, 0, 0], [101, 2023, 2003, 1037, 3231, 102]])
    mask = (ids != 0).astype(np.int64)
    feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    ours = session(fused).run(None, feeds)[0]
    reference = session(unfused).run(None, feeds)[0]
    assert np.allclose(ours[mask == 1], reference[mask == 1], atol=1e-4)
