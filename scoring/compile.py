"""Turns an exported sentence-embedding ONNX file into the graph the worker runs.

Steps, all offline and deterministic (nothing is downloaded):
1. drop the NaN guards exporters put after each attention softmax (exact here, see below);
2. fold constants (an "int8" file that stores int8 weights and multiplies them back to fp32
   becomes a plain fp32 graph), fuse what onnxruntime's transformer optimizer recognises
   (BiasGelu) and the attention blocks (`scoring._attention`), but not
   SkipLayerNormalization: on this CPU its kernel took 20% of the run time where Add +
   LayerNormalization take under 10% (the session is opened with
   `SESSION_DISABLED_OPTIMIZERS` so it does not fuse it back);
3. with `precision="mixed-int8"`, quantise the weight MatMuls to int8 arithmetic, per output
   channel, with activations quantised per call (dynamic). The FFN down-projections of the
   first `fp32_layers` layers stay fp32: they alone move the embedding most (their inputs
   are GELU outputs with a few large channels), so keeping them holds agreement with the
   fp32 model above 0.99 while the rest runs on the CPU's int8 units.

Steps 2 and 3 are choices for the CPU: a worker whose first provider is another device gets
the fp32 graph (`scoring.providers.graph_precision`) and may fuse SkipLayerNormalization.

The result is cached on disk by the source file's hash and the recipe, so only the first
start of a worker pays the few seconds it takes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

import onnx
import onnxruntime as ort
from onnx import ModelProto

from gateway.config import Precision
from scoring._attention import fuse_attention

log = logging.getLogger("shadowgate.compile")

RECIPE_VERSION = 3
# Runtime fusions a session over a compiled graph must not apply (see step 2 above).
SESSION_DISABLED_OPTIMIZERS = ("SkipLayerNormFusion",)
_INTEGER_OPS = frozenset(
    {"MatMulInteger", "DynamicQuantizeMatMul", "QAttention", "QLinearMatMul", "MatMulNBits"}
)


def without_nan_guards(model: ModelProto) -> int:
    """Replace every `Where(IsNaN(x), c, x)` by `x` in place; returns how many went.

    torch's exporter guards each attention softmax against rows whose keys are all masked
    (NaN). Every window here starts with an unmasked [CLS], so no row is all masked and the
    guard is exact to drop; the profile showed Where and IsNaN at 14% of the run time.
    """
    graph = model.graph
    producers = {output: node for node in graph.node for output in node.output}
    dropped: set[int] = set()
    renamed: dict[str, str] = {}
    for node in graph.node:
        test = producers.get(node.input[0]) if node.op_type == "Where" else None
        if test is not None and test.op_type == "IsNaN" and test.input[0] == node.input[2]:
            dropped.update((id(node), id(test)))
            renamed[node.output[0]] = node.input[2]
    if not renamed or {output.name for output in graph.output} & renamed.keys():
        return 0
    kept = [node for node in graph.node if id(node) not in dropped]
    for node in kept:
        for i, name in enumerate(node.input):
            if name in renamed:
                node.input[i] = renamed[name]
    del graph.node[:]
    graph.node.extend(kept)
    return len(renamed)


def down_projections(model: ModelProto) -> list[str]:
    """Names of the MatMuls whose constant weight narrows (FFN outputs), in graph order."""
    shapes = {init.name: tuple(init.dims) for init in model.graph.initializer}
    names = []
    for node in model.graph.node:
        shape = shapes.get(node.input[1]) if node.op_type == "MatMul" else None
        if shape is not None and len(shape) == 2 and shape[0] > shape[1]:
            names.append(node.name)
    return names


def _fold_and_fuse(model: ModelProto, workdir: Path) -> ModelProto:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    folded = workdir / "folded.onnx"
    options.optimized_model_filepath = str(folded)
    ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    from onnxruntime.transformers import optimizer
    from onnxruntime.transformers.fusion_options import FusionOptions

    fusions = FusionOptions("bert")
    fusions.enable_skip_layer_norm = False
    fusions.enable_bias_skip_layer_norm = False
    # num_heads/hidden_size 0: read off the graph; opt_level 0: only the optimizer's own
    # fusions (onnxruntime applies its runtime ones again when the session loads).
    fused = optimizer.optimize_model(
        str(folded),
        model_type="bert",
        num_heads=0,
        hidden_size=0,
        opt_level=0,
        optimization_options=fusions,
    )
    counts = {k: v for k, v in fused.get_fused_operator_statistics().items() if v}
    result: ModelProto = fused.model
    counts["MultiHeadAttention"] = fuse_attention(result)
    log.info("compile: fused %s", counts)
    return result


def _quantize(model: ModelProto, fp32_layers: int, workdir: Path) -> ModelProto:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    keep = down_projections(model)[:fp32_layers]
    out = workdir / "quantized.onnx"
    quantize_dynamic(
        model,
        str(out),
        weight_type=QuantType.QInt8,
        per_channel=True,
        nodes_to_exclude=keep,
        # Fused nodes carry no shape information; their outputs are fp32.
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    return onnx.load(str(out))


def compile_model(source: Path, *, precision: Precision, fp32_layers: int) -> bytes:
    """The runnable graph for `source`, as serialised ONNX."""
    model = onnx.load(str(source))
    guards = without_nan_guards(model)
    if guards:
        log.info("compile: dropped %d attention NaN guards from %s", guards, source.name)
    if any(node.op_type in _INTEGER_OPS for node in model.graph.node):
        log.info("compile: %s already runs integer arithmetic; used as it is", source.name)
        return bytes(model.SerializeToString())
    with tempfile.TemporaryDirectory(prefix="shadowgate-compile-") as tmp:
        workdir = Path(tmp)
        model = _fold_and_fuse(model, workdir)
        if precision == "mixed-int8":
            model = _quantize(model, fp32_layers, workdir)
        return bytes(model.SerializeToString())


def cache_key(source: Path, *, precision: Precision, fp32_layers: int) -> str:
    digest = hashlib.sha256()
    with source.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    recipe = f"v{RECIPE_VERSION}-{precision}-{fp32_layers}-ort{ort.__version__}"
    return f"{digest.hexdigest()[:24]}-{recipe}"


def load_compiled(
    source: Path, *, precision: Precision, fp32_layers: int, cache_dir: Path | None
) -> bytes:
    """`compile_model`, through an on-disk cache when `cache_dir` is set and writable."""
    if cache_dir is None:
        return compile_model(source, precision=precision, fp32_layers=fp32_layers)
    key = cache_key(source, precision=precision, fp32_layers=fp32_layers)
    path = cache_dir / f"{key}.onnx"
    if path.is_file():
        return path.read_bytes()
    data = compile_model(source, precision=precision, fp32_layers=fp32_layers)
    partial: str | None = None
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        # Written aside and renamed: a worker starting at the same time never reads half.
        fd, partial = tempfile.mkstemp(dir=cache_dir, suffix=".partial")
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(partial, path)
        partial = None
        log.info("compile: cached %s", path)
    except OSError as exc:
        log.warning("compile: cannot cache the compiled model in %s: %s", cache_dir, exc)
    finally:
        if partial is not None:
            Path(partial).unlink(missing_ok=True)
    return data
