"""`shadowgate export-model NAME_OR_DIR OUT_DIR`: any sentence-transformers model to the ONNX
file and tokenizer.json the scoring worker loads (`scoring.model`, `scoring.tokenizer`).

Needs the `parity` extra (torch, sentence-transformers, onnx); the worker itself never does.
The worker compiles the fp32 file itself at start-up (`scoring.compile`), int8 where it is safe.
"""

from __future__ import annotations

import importlib
import logging
import warnings
from pathlib import Path
from typing import Any

from gateway.errors import ShadowgateError

log = logging.getLogger("shadowgate.export")


class ExportError(ShadowgateError):
    """The model could not be loaded or exported."""


def _module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ExportError(
            f"export-model needs {name}: pip install 'shadowgate[parity]' onnx"
        ) from None


def export_model(name_or_dir: str, out_dir: Path) -> Path:
    """Write `model.onnx` (fp32) and `tokenizer.json` to `out_dir`; returns the model path to
    put in `scoring.model`. The worker compiles it (mixed int8 by default) when it starts."""
    torch = _module("torch")
    st = _module("sentence_transformers")
    _module("onnx")
    try:
        model = st.SentenceTransformer(name_or_dir, device="cpu")
    except Exception as exc:  # whatever the loader raises, the user needs one line
        raise ExportError(f"cannot load {name_or_dir!r}: {exc}") from None
    pooling = [type(module).__name__ for module in model]
    if "Pooling" not in pooling:
        raise ExportError(f"{name_or_dir!r} has no mean-pooling module ({pooling})")
    transformer = model[0].auto_model.eval()

    module_base: Any = torch.nn.Module

    class Encoder(module_base):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.inner = transformer

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    out_dir.mkdir(parents=True, exist_ok=True)
    sample = model.tokenizer(["an example sentence"], return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    inputs = tuple(sample.get(n, torch.zeros_like(sample["input_ids"])) for n in names)
    path = out_dir / "model.onnx"
    with warnings.catch_warnings():
        # The TorchScript exporter on purpose: the newer one needs onnxscript as well, and
        # this graph (a plain encoder with dynamic batch and length) exports the same way.
        # It warns about its own deprecation and traces (TracerWarning) as it goes; none of
        # that is actionable for the user, and a warning raised as an error inside its C
        # code breaks the export.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Encoder().eval(),
            inputs,
            str(path),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes={n: {0: "batch", 1: "sequence"} for n in [*names, "last_hidden_state"]},
            opset_version=17,
            dynamo=False,
        )
    model.tokenizer.save_pretrained(str(out_dir))
    if not (out_dir / "tokenizer.json").is_file():
        raise ExportError(f"{name_or_dir!r} has no fast tokenizer to write as tokenizer.json")
    log.info("exported %s to %s", name_or_dir, path)
    return path
