"""The chart lints and renders, for both roles and every CI values file, into objects that
refer to each other correctly (selectors match pods, names exist)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helm.conftest import CHART, CI_VALUES, Doc, by_kind, one, run_helm

Render = Callable[..., list[Doc]]


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.stem)
def test_helm_lint_strict(helm: str, values: Path) -> None:
    out = run_helm(helm, "lint", "--strict", str(CHART), "-f", str(values))
    assert out.returncode == 0, out.stdout + out.stderr


def _pod_labels(docs: list[Doc]) -> list[dict[str, str]]:
    """Labels of every pod the release will run (Deployments and the RayService's groups)."""
    labels = [d["spec"]["template"]["metadata"]["labels"] for d in by_kind(docs, "Deployment")]
    for rs in by_kind(docs, "RayService"):
        cluster = rs["spec"]["rayClusterConfig"]
        labels.append(cluster["headGroupSpec"]["template"]["metadata"]["labels"])
        for group in cluster["workerGroupSpecs"]:
            # KubeRay adds ray.io/group to every worker pod of a group.
            labels.append({**group["template"]["metadata"]["labels"],
                           "ray.io/group": group["groupName"]})
    return labels


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_hub_defaults_render_the_hub(render: Render) -> None:
    docs = render(None)
    kinds = sorted({d["kind"] for d in docs})
    assert kinds == ["ConfigMap", "Deployment", "NetworkPolicy", "PersistentVolumeClaim",
                     "PodDisruptionBudget", "RayService", "Secret", "Service", "ServiceAccount"]
    deploy = one(docs, "Deployment", "-orchestrator")
    assert deploy["spec"]["strategy"]["type"] == "Recreate"  # one SQLite writer at a time
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert "exec 'mesh' 'orchestrator' '--config' '/etc/mesh/config/mesh.yaml'" in \
        container["args"][0]
    assert container["readinessProbe"]["grpc"] == {
        "port": 50051, "service": "mesh.v1.OrchestratorService"}
    assert container["livenessProbe"]["grpc"] == {"port": 50051, "service": ""}
    assert not by_kind(docs, "HorizontalPodAutoscaler")


def test_node_role_renders_the_node_server(render: Render) -> None:
    docs = render(CHART / "ci" / "node-values.yaml")
    deploy = one(docs, "Deployment", "-node")
    script = deploy["spec"]["template"]["spec"]["containers"][0]["args"][0]
    for flag in ("'mesh' 'node'", "'--hub' 'hub.mesh.example.org:50052'",
                 "'--organization' 'prairie-agri-institute'", "'--tls-ca' '/etc/mesh/tls/ca.crt'",
                 "'--signing-key' '/etc/mesh/keys/org.key'"):
        assert flag in script
    assert not by_kind(docs, "PersistentVolumeClaim")
    tls = [s for s in by_kind(docs, "Secret") if s["type"] == "kubernetes.io/tls"]
    assert len(tls) == 1 and set(tls[0]["data"]) == {"tls.crt", "tls.key", "ca.crt"}
    hpa = one(docs, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deploy["metadata"]["name"]
    assert "replicas" not in deploy["spec"]  # the HPA owns the count
    probe = deploy["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    assert probe["grpc"] == {"port": 50059, "service": "mesh.v1.ExpertNodeService"}


def test_gpu_worker_group_asks_for_gpus_on_gpu_nodes(render: Render) -> None:
    docs = render(CHART / "ci" / "hub-production-values.yaml")
    groups = {g["groupName"]: g for g in
              one(docs, "RayService")["spec"]["rayClusterConfig"]["workerGroupSpecs"]}
    gpu = groups["gpu"]["template"]["spec"]
    assert gpu["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert gpu["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert gpu["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert "nvidia.com/gpu" not in groups["cpu"]["template"]["spec"]["containers"][0][
        "resources"]["limits"]


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.stem)
def test_selectors_and_references_hold(render: Render, values: Path) -> None:
    docs = render(values)
    pods = _pod_labels(docs)
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for svc in by_kind(docs, "Service"):
        assert any(_selects(svc["spec"]["selector"], p) for p in pods), svc["metadata"]["name"]
    for kind in ("PodDisruptionBudget", "NetworkPolicy"):
        for obj in by_kind(docs, kind):
            selector = (obj["spec"]["selector"] if kind == "PodDisruptionBudget"
                        else obj["spec"]["podSelector"])["matchLabels"]
            assert any(_selects(selector, p) for p in pods), obj["metadata"]["name"]
    for hpa in by_kind(docs, "HorizontalPodAutoscaler"):
        assert ("Deployment", hpa["spec"]["scaleTargetRef"]["name"]) in names
    for monitor in by_kind(docs, "ServiceMonitor"):
        selected = [s for s in by_kind(docs, "Service")
                    if _selects(monitor["spec"]["selector"]["matchLabels"],
                                s["metadata"]["labels"])
                    and s["metadata"]["labels"]["app.kubernetes.io/component"]
                    in monitor["spec"]["selector"]["matchExpressions"][0]["values"]]
        assert len(selected) == 2
        for svc in selected:
            assert "metrics" in {p["name"] for p in svc["spec"]["ports"]}
    for deploy in by_kind(docs, "Deployment"):
        spec = deploy["spec"]["template"]["spec"]
        for volume in spec["volumes"]:
            if "configMap" in volume:
                assert ("ConfigMap", volume["configMap"]["name"]) in names
        env = {e["name"]: e for e in spec["containers"][0]["env"]}
        head_svc = one(docs, "RayService")["metadata"]["name"] + "-head-svc"
        assert env["RAY_ADDRESS"]["value"] == f"{head_svc}:6379"


def test_ray_token_is_shared_by_ray_and_the_drivers(render: Render) -> None:
    docs = render(None)
    auth = one(docs, "RayService")["spec"]["rayClusterConfig"]["authOptions"]
    secret = one(docs, "Secret", "-ray-auth")
    assert auth == {"mode": "token", "secretName": secret["metadata"]["name"]}
    assert set(secret["data"]) == {"auth_token"}
    env = {e["name"]: e for e in one(docs, "Deployment")["spec"]["template"]["spec"][
        "containers"][0]["env"]}
    assert env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": secret["metadata"]["name"], "key": "auth_token"}


def test_network_policy_admits_only_ray_members_to_ray_pods(render: Render) -> None:
    docs = render(None)
    policy = one(docs, "NetworkPolicy", "-ray")
    member = policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    orchestrator = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert _selects(member, orchestrator)  # drivers must reach the replicas and back
    for rule in policy["spec"]["ingress"][1:]:
        assert "namespaceSelector" in rule["from"][0] and rule["ports"]


def test_orchestrator_serves_metrics_where_the_service_monitor_scrapes(render: Render) -> None:
    import yaml

    values = next(p for p in CI_VALUES if p.stem == "hub-production-values")
    docs = render(values, "--set", "serviceMonitor.meshMetricsPort=9191")
    config = yaml.safe_load(one(docs, "ConfigMap", "-config")["data"]["mesh.yaml"])
    assert config["orchestrator"]["metrics_port"] == 9191
    container = one(docs, "Deployment", "-orchestrator")["spec"]["template"]["spec"][
        "containers"][0]
    assert {"name": "metrics", "containerPort": 9191} in container["ports"]


def test_auth_settings_reach_the_mesh_config(render: Render) -> None:
    import yaml

    from mesh.config import MeshConfig

    docs = render(None, "--set", "orchestrator.auth.required=false",
                  "--set-json", "orchestrator.auth.refresh_s=0.5")
    data = yaml.safe_load(one(docs, "ConfigMap", "-config")["data"]["mesh.yaml"])
    assert data["auth"] == {"required": False, "refresh_s": 0.5}
    assert MeshConfig.model_validate(data).auth_required() is False
    default = yaml.safe_load(one(render(None), "ConfigMap", "-config")["data"]["mesh.yaml"])
    # Listening on every interface, the default hub refuses calls without a credential.
    assert MeshConfig.model_validate(default).auth_required() is True
