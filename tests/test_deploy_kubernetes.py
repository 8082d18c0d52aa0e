"""The Kubernetes manifests (config/kubernetes): rendered with `kubectl kustomize`, valid for
`kubernetes-validate --strict`, and consistent with the gateway itself: the ConfigMap loads
with the gateway's config loader from the environment the pods get, the KEDA trigger names
the stream and group the workers use, probes and drain follow the control-plane contract."""

from __future__ import annotations

import base64
import functools
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from gateway.config import Config, apply_environment, load_config
from gateway.constants import GROUP_SCORERS, KEY_PAIRS
from scoring.providers import batching
from tests.tools import require_module, require_tool

ROOT = Path(__file__).resolve().parent.parent / "config" / "kubernetes"
KUSTOMIZATIONS = {"base": ROOT, "dev": ROOT / "overlays" / "dev"}
BUILT_IN_API_VERSIONS = {"v1", "apps/v1", "policy/v1", "autoscaling/v2"}
KEDA_API_VERSION = "keda.sh/v1alpha1"
# The oldest Kubernetes the manifests are for, and the newest kubernetes-validate knows.
KUBERNETES_VERSIONS = ["1.29.0", None]
# In-flight streams get this long to finish once the gateway drains (its default).
DRAIN_GRACE_S = 30
# Metadata of KEDA's redis-streams trigger, from its documentation.
REDIS_STREAMS_FIELDS = {
    "address", "host", "port", "addressFromEnv", "hostFromEnv", "portFromEnv",
    "usernameFromEnv", "passwordFromEnv", "stream", "consumerGroup", "pendingEntriesCount",
    "streamLength", "lagCount", "activationLagCount", "enableTLS", "unsafeSsl", "databaseIndex",
}  # fmt: skip
REDIS_AUTH_PARAMETERS = {"address", "host", "port", "username", "password"}
# Stand-ins for Secrets an operator creates (the dev overlay generates its own).
SECRET_STAND_INS = {"url": "redis://redis.example:6379/0", "admin-token": "admin-secret"}

Object = dict[str, Any]


@functools.cache
def _render(name: str) -> tuple[Object, ...]:
    result = subprocess.run(
        [require_tool("kubectl"), "kustomize", str(KUSTOMIZATIONS[name])],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def rendered(name: str) -> list[Object]:
    return list(_render(name))


def of_kind(objects: list[Object], kind: str) -> list[Object]:
    return [o for o in objects if o["kind"] == kind]


def named(objects: list[Object], kind: str, name: str) -> Object:
    [found] = [o for o in of_kind(objects, kind) if o["metadata"]["name"] == name]
    return found


def workloads(objects: list[Object]) -> list[Object]:
    return of_kind(objects, "Deployment") + of_kind(objects, "StatefulSet")


def config_of(objects: list[Object], workload: Object, tmp_path: Path) -> Config:
    """The config a workload's container would load: the file from the mounted ConfigMap,
    with the environment the pod spec gives it (Secrets it does not render are stood in for,
    optional ones left out)."""
    pod = workload["spec"]["template"]["spec"]
    [container] = pod["containers"]
    args = container["args"]
    path = PurePosixPath(args[args.index("--config") + 1])
    [mount] = [m for m in container["volumeMounts"] if PurePosixPath(m["mountPath"]) == path.parent]
    [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    config_map = named(objects, "ConfigMap", volume["configMap"]["name"])
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(named(objects, "ConfigMap", source["configMapRef"]["name"])["data"])
    secrets = {s["metadata"]["name"]: s for s in of_kind(objects, "Secret")}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
            continue
        ref = item["valueFrom"]["secretKeyRef"]
        secret = secrets.get(ref["name"])
        if secret is not None and ref["key"] in secret.get("data", {}):
            env[item["name"]] = base64.b64decode(secret["data"][ref["key"]]).decode()
        elif not ref.get("optional"):
            env[item["name"]] = SECRET_STAND_INS[ref["key"]]
    file = tmp_path / path.name
    file.write_text(config_map["data"][path.name])
    return apply_environment(load_config(file, env=env), env=env)


def writable_mounts(workload: Object) -> list[PurePosixPath]:
    """Mount paths of the container's emptyDir and volume-claim volumes."""
    pod = workload["spec"]["template"]["spec"]
    claims = {c["metadata"]["name"] for c in workload["spec"].get("volumeClaimTemplates", [])}
    empty = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v} | claims
    [container] = pod["containers"]
    return [
        PurePosixPath(m["mountPath"])
        for m in container.get("volumeMounts", [])
        if m["name"] in empty and not m.get("readOnly")
    ]


def test_base_renders_the_gateway_the_workers_and_their_config() -> None:
    objects = rendered("base")
    kinds = {(o["kind"], o["metadata"]["name"].rsplit("-", 1)[0] if o["kind"] == "ConfigMap"
              else o["metadata"]["name"]) for o in objects}  # fmt: skip
    assert kinds >= {
        ("Deployment", "shadowgate-gateway"),
        ("Service", "shadowgate-gateway"),
        ("PodDisruptionBudget", "shadowgate-gateway"),
        ("HorizontalPodAutoscaler", "shadowgate-gateway"),
        ("ConfigMap", "shadowgate-config"),
        ("Deployment", "shadowgate-worker"),
        ("ScaledObject", "shadowgate-worker"),
        ("TriggerAuthentication", "shadowgate-redis"),
    }
    # Redis is external and Secrets are the operator's: the base creates neither.
    assert not of_kind(objects, "StatefulSet")
    assert not of_kind(objects, "Secret")


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS, ids=lambda v: v or "newest")
@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_every_built_in_object_passes_kubernetes_validate_strict(
    name: str, version: str | None, tmp_path: Path
) -> None:
    require_module("kubernetes_validate")
    objects = rendered(name)
    built_in = [o for o in objects if o["apiVersion"] in BUILT_IN_API_VERSIONS]
    others = {o["apiVersion"] for o in objects} - BUILT_IN_API_VERSIONS
    assert others <= {KEDA_API_VERSION}, f"not validated: {others}"
    manifest = tmp_path / "built-in.yaml"
    manifest.write_text(yaml.safe_dump_all(built_in))
    command = [sys.executable, "-m", "kubernetes_validate", "--strict"]
    if version is not None:
        command += ["--kubernetes-version", version]
    result = subprocess.run(
        [*command, str(manifest)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(" passed for resource ") == len(built_in), result.stdout


def test_keda_scales_workers_on_the_pairs_stream_backlog_and_pending(tmp_path: Path) -> None:
    objects = rendered("base")
    worker = named(objects, "Deployment", "shadowgate-worker")
    config = config_of(objects, worker, tmp_path)
    [scaled] = of_kind(objects, "ScaledObject")
    spec = scaled["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1", "kind": "Deployment", "name": worker["metadata"]["name"]
    }  # fmt: skip
    assert 1 <= spec["minReplicaCount"] < spec["maxReplicaCount"]
    assert "replicas" not in worker["spec"], "KEDA owns the worker count"
    triggers = spec["triggers"]
    for trigger in triggers:
        metadata = trigger["metadata"]
        assert trigger["type"] == "redis-streams"
        assert set(metadata) <= REDIS_STREAMS_FIELDS, set(metadata) - REDIS_STREAMS_FIELDS
        assert all(isinstance(v, str) for v in metadata.values()), "KEDA metadata are strings"
        assert metadata["stream"] == config.redis.key_prefix + KEY_PAIRS
        assert metadata["consumerGroup"] == GROUP_SCORERS
    by_kind = {
        key: t["metadata"] for t in triggers for key in ("lagCount", "pendingEntriesCount")
        if key in t["metadata"]
    }  # fmt: skip
    # The backlog (entries no worker has read) scales; KEDA needs an activation with it.
    assert int(by_kind["lagCount"]["lagCount"]) > 0
    assert "activationLagCount" in by_kind["lagCount"]
    # Every busy worker holds a batch pending: a target at or below the batch size would
    # add a pod for each pod.
    pairs_per_batch = batching(config.scoring).pairs
    assert int(by_kind["pendingEntriesCount"]["pendingEntriesCount"]) > pairs_per_batch
    [auth] = of_kind(objects, "TriggerAuthentication")
    assert {t["authenticationRef"]["name"] for t in triggers} == {auth["metadata"]["name"]}
    references = auth["spec"]["secretTargetRef"]
    assert {r["parameter"] for r in references} <= REDIS_AUTH_PARAMETERS
    assert "address" in {r["parameter"] for r in references}
    # The same Secret the pods take REDIS_URL from.
    [redis_url] = [
        e for e in worker["spec"]["template"]["spec"]["containers"][0]["env"]
        if e["name"] == "REDIS_URL"
    ]  # fmt: skip
    assert {r["name"] for r in references} == {redis_url["valueFrom"]["secretKeyRef"]["name"]}


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_the_config_map_loads_with_the_gateway_config_loader(name: str, tmp_path: Path) -> None:
    objects = rendered(name)
    gateway = named(objects, "Deployment", "shadowgate-gateway")
    config = config_of(objects, gateway, tmp_path)
    [container] = gateway["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": config.listen.port, "control": config.control.port}
    assert config.control.host == "0.0.0.0", "probes and Prometheus come from outside the pod"
    assert config.redis.url, "an external Redis: no embedded one per pod"
    assert config.control.admin_token is not None
    worker = named(objects, "Deployment", "shadowgate-worker")
    worker_config = config_of(objects, worker, tmp_path)
    assert worker_config.redis.url == config.redis.url
    # What each process writes lands on a writable volume: the root is read-only.
    writes = (
        (gateway, [config.state_dir]),
        (worker, [worker_config.state_dir, worker_config.scoring.compile_cache]),
    )
    for workload, paths in writes:
        mounts = writable_mounts(workload)
        for path in paths:
            assert path is not None
            assert any(PurePosixPath(path).is_relative_to(m) for m in mounts), path


def test_gateway_probes_drain_and_service_follow_the_control_plane() -> None:
    objects = rendered("base")
    gateway = named(objects, "Deployment", "shadowgate-gateway")
    pod = gateway["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["args"][0] == "serve"
    assert container["args"][-2:] == ["--workers", "auto"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "control"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "control"}
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    # The kubelet's grace period runs from the start of preStop: it must cover both.
    assert pod["terminationGracePeriodSeconds"] > int(command[1]) + DRAIN_GRACE_S
    annotations = gateway["spec"]["template"]["metadata"]["annotations"]
    control_port = next(p for p in container["ports"] if p["name"] == "control")
    assert annotations["prometheus.io/port"] == str(control_port["containerPort"])
    service = named(objects, "Service", "shadowgate-gateway")
    assert {p["name"]: p["targetPort"] for p in service["spec"]["ports"]} == {
        "http": "http", "control": "control"
    }  # fmt: skip
    selector = gateway["spec"]["selector"]["matchLabels"]
    assert service["spec"]["selector"] == selector
    assert named(objects, "PodDisruptionBudget", "shadowgate-gateway")["spec"]["selector"] == {
        "matchLabels": selector
    }  # fmt: skip
    hpa = named(objects, "HorizontalPodAutoscaler", "shadowgate-gateway")["spec"]
    assert hpa["scaleTargetRef"]["name"] == gateway["metadata"]["name"]
    assert [m["resource"]["name"] for m in hpa["metrics"]] == ["cpu"]
    assert hpa["minReplicas"] >= 2, "one replica drains while another serves"
    assert "replicas" not in gateway["spec"], "the HPA owns the gateway count"


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_every_pod_runs_as_non_root_on_a_read_only_root_with_limits(name: str) -> None:
    for workload in workloads(rendered(name)):
        template = workload["spec"]["template"]
        assert template["spec"]["securityContext"]["runAsNonRoot"] is True
        assert template["spec"]["automountServiceAccountToken"] is False
        labels = template["metadata"]["labels"]
        assert workload["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert {"app.kubernetes.io/name", "app.kubernetes.io/component"} <= labels.keys()
        assert labels["app.kubernetes.io/part-of"] == "shadowgate"
        for container in template["spec"]["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            assert container["resources"]["requests"].keys() >= {"cpu", "memory"}
            assert "memory" in container["resources"]["limits"]


def test_dev_overlay_runs_one_redis_that_the_pods_reach() -> None:
    objects = rendered("dev")
    [redis] = of_kind(objects, "StatefulSet")
    assert redis["spec"]["replicas"] == 1
    service = named(objects, "Service", redis["spec"]["serviceName"])
    labels = redis["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    port = service["spec"]["ports"][0]["port"]
    secret = named(objects, "Secret", "shadowgate-redis")
    url = base64.b64decode(secret["data"]["url"]).decode()
    assert url.startswith(f"redis://{service['metadata']['name']}:{port}/")
    # No KEDA on a development cluster: one worker, nothing that needs its CRDs.
    assert not [o for o in objects if o["apiVersion"] == KEDA_API_VERSION]
    assert any(m == PurePosixPath("/data") for m in writable_mounts(redis))
