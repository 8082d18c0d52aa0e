"""Execution providers for scoring: the config, the refusal of a missing one at start-up,
batching by device, and (only where CUDA is present) GPU vectors against the CPU path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from gateway.config import ScoringConfig, parse_config
from gateway.errors import ConfigError, ProviderUnavailableError
from scoring.embedder import Embedder
from scoring.providers import ORT_NAMES, Batching, batching, graph_precision
from tests.test_config import one_line_error, run_cli

AVAILABLE = ort.get_available_providers()
MISSING = next((n for n in ("CUDA", "TensorRT", "OpenVINO") if ORT_NAMES[n] not in AVAILABLE), None)
TEXTS = [
    "Restart the service after changing its configuration.",
    "The capital of France is Paris.",
    " ".join(f"Step {i}: check the replication lag of shard {i}." for i in range(60)),
    "!!!",
]


def scoring(**fields: object) -> ScoringConfig:
    config = parse_config({"upstreams": {"production": {"url": "http://p"}}, "scoring": fields})
    return config.scoring


def test_providers_default_to_cpu_and_names_are_case_insensitive() -> None:
    assert ScoringConfig().providers == ["CPU"]
    assert scoring(providers=["cuda", "tensorrt", "CPU"]).providers == ["CUDA", "TensorRT", "CPU"]


@pytest.mark.parametrize(
    ("providers", "message"),
    [
        (["ROCm"], "scoring.providers.0: Input should be 'CUDA', 'TensorRT', 'OpenVINO' or 'CPU'"),
        ([], "scoring.providers: must name at least one provider"),
        (["CPU", "cpu"], "scoring.providers: names a provider twice"),
    ],
)
def test_unknown_or_repeated_provider_is_refused_with_the_field(
    providers: list[str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        scoring(providers=providers)


def test_batching_follows_the_preferred_provider_unless_set() -> None:
    assert batching(scoring()) == Batching(pairs=32, sequences=1)
    assert batching(scoring(providers=["CUDA", "CPU"])) == Batching(pairs=256, sequences=64)
    assert batching(scoring(providers=["OpenVINO"])) == Batching(pairs=32, sequences=1)
    explicit = scoring(providers=["CUDA"], batch_size=8, inference_batch_size=4)
    assert batching(explicit) == Batching(pairs=8, sequences=4)


def test_gpu_runs_the_fp32_graph_whatever_the_cpu_precision() -> None:
    assert graph_precision(scoring()) == "mixed-int8"
    assert graph_precision(scoring(providers=["CUDA", "CPU"])) == "fp32"


def test_cpu_embedder_runs_on_the_cpu_provider_only() -> None:
    assert Embedder(ScoringConfig(threads=1)).providers == ["CPUExecutionProvider"]


@pytest.mark.skipif(MISSING is None, reason="every accelerator is installed here")
def test_missing_provider_stops_the_embedder_before_the_model_loads(tmp_path: Path) -> None:
    # The model path does not exist either: the provider is checked first, with one line.
    config = scoring(providers=[MISSING, "CPU"], model=str(tmp_path / "absent.onnx"))
    with pytest.raises(ProviderUnavailableError) as caught:
        Embedder(config)
    message = str(caught.value)
    assert message.startswith(f"scoring.providers: {MISSING} is not available in the installed")
    assert "\n" not in message


@pytest.mark.e2e
@pytest.mark.skipif(MISSING is None, reason="every accelerator is installed here")
def test_score_with_a_missing_provider_exits_1_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "gpu.yaml"
    path.write_text(
        "upstreams: {production: {url: 'http://p'}}\n"
        "redis: {url: 'redis://127.0.0.1:1'}\n"
        f"scoring: {{providers: [{MISSING}, CPU]}}\n"
    )
    line = one_line_error(run_cli("score", "--config", str(path)), exit_code=1)
    assert line.startswith(f"shadowgate: scoring.providers: {MISSING} is not available")


@pytest.mark.skipif("CUDAExecutionProvider" not in AVAILABLE, reason="CUDA is not present")
def test_cuda_vectors_match_the_cpu_path() -> None:
    # Both on the fp32 graph: the GPU never runs the CPU's int8 one.
    cpu = Embedder(ScoringConfig(precision="fp32", cache_size=0)).embed(TEXTS)
    gpu = Embedder(ScoringConfig(providers=["CUDA", "CPU"], cache_size=0)).embed(TEXTS)
    cosines = np.sum(cpu * gpu, axis=1)
    assert cosines.min() >= 0.999, cosines
