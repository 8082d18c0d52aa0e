"""Which onnxruntime execution providers a scoring worker runs on, and what that changes.

`scoring.providers` lists them, first preferred. A provider the installed onnxruntime does not
have stops the worker at start-up with one line: onnxruntime itself would only warn and run
on the CPU, and a GPU worker quietly scoring on its CPU is the failure to avoid. On a GPU the
graph stays fp32 (dynamic int8 has CPU kernels only) and model calls take many sequences at
once; on the CPU one sequence per call, as `scoring.inference_batch_size` explains.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import onnxruntime as ort

from gateway.config import Precision, ScoringConfig
from gateway.errors import ProviderUnavailableError

ORT_NAMES: Final = {
    "CUDA": "CUDAExecutionProvider",
    "TensorRT": "TensorrtExecutionProvider",
    "OpenVINO": "OpenVINOExecutionProvider",
    "CPU": "CPUExecutionProvider",
}
GPUS: Final = frozenset({"CUDA", "TensorRT"})
_INSTALL_HINT: Final = {
    "CUDA": "install shadowgate[accelerator] (onnxruntime-gpu) in place of onnxruntime",
    "TensorRT": "install shadowgate[accelerator] (onnxruntime-gpu) and TensorRT",
    "OpenVINO": "install onnxruntime-openvino in place of onnxruntime",
}
# Pairs per worker read and sequences per model call, when the config leaves them unset.
_CPU_BATCHING: Final = (32, 1)
_GPU_BATCHING: Final = (256, 64)


@dataclass(frozen=True, slots=True)
class Batching:
    pairs: int
    """Pairs a worker takes from the stream at once."""
    sequences: int
    """Token sequences in one model call (padded to the longest)."""


def _short(ort_name: str) -> str:
    return ort_name.removesuffix("ExecutionProvider")


def execution_providers(names: Sequence[str]) -> list[str]:
    """onnxruntime's names for `names`, in order; refuses one the installed build lacks."""
    available = ort.get_available_providers()
    for name in names:
        if ORT_NAMES[name] not in available:
            have = ", ".join(_short(p) for p in available)
            raise ProviderUnavailableError(
                f"scoring.providers: {name} is not available in the installed onnxruntime "
                f"{ort.__version__} (it has {have}); {_INSTALL_HINT.get(name, '')}".rstrip("; ")
            )
    return [ORT_NAMES[name] for name in names]


def check_session(session: ort.InferenceSession, names: Sequence[str]) -> None:
    """Refuses a session that dropped a provider it was given: onnxruntime falls back to the
    CPU, with a log line, when a build has CUDA but the driver or device is missing."""
    running = session.get_providers()
    for name in names:
        if ORT_NAMES[name] not in running:
            raise ProviderUnavailableError(
                f"scoring.providers: {name} is installed but did not start (onnxruntime runs "
                f"{', '.join(_short(p) for p in running)}); check the device and its driver"
            )


def on_gpu(config: ScoringConfig) -> bool:
    return config.providers[0] in GPUS


def graph_precision(config: ScoringConfig) -> Precision:
    """The compiled graph's precision: `scoring.precision` on the CPU, fp32 elsewhere (the
    int8 operators of the mixed graph have CPU kernels only, and would shuttle every layer's
    activations between the devices)."""
    return config.precision if config.providers[0] == "CPU" else "fp32"


def batching(config: ScoringConfig) -> Batching:
    """Batch sizes: the config's where set, else by the preferred provider."""
    pairs, sequences = _GPU_BATCHING if on_gpu(config) else _CPU_BATCHING
    return Batching(
        pairs=config.batch_size or pairs, sequences=config.inference_batch_size or sequences
    )
