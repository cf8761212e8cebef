"""The deployment material, checked without a cluster or a Docker engine (neither exists on
these machines): the Kubernetes overlays render with `kubectl kustomize` and keep the
invariants the operations guide promises; the Compose file and the Dockerfile have the shape
deploy/README.md describes."""

import pathlib
import re
import shutil
import subprocess

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"


def render(overlay):
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is needed to render the overlays (.ci/run installs it)"
    result = subprocess.run([kubectl, "kustomize", str(KUBERNETES / "overlays" / overlay)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    documents = [d for d in yaml.safe_load_all(result.stdout) if d]
    return {(d["kind"], d["metadata"]["name"]): d for d in documents}


def container(deployment, name):
    return next(c for c in deployment["spec"]["template"]["spec"]["containers"]
                if c["name"] == name)


def duration_arg(args, flag):
    for arg in args:
        if arg.startswith(f"--{flag}="):
            return int(arg.split("=", 1)[1])
    raise AssertionError(f"--{flag} not set in {args}")


def bytes_of(quantity):
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40}
    match = re.fullmatch(r"(\d+)(Ki|Mi|Gi|Ti)?", str(quantity))
    assert match, quantity
    return int(match.group(1)) * units.get(match.group(2), 1)


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_overlays_render_with_the_promised_invariants(overlay):
    objects = render(overlay)
    executor = objects[("Deployment", "osprey-executor")]
    coordinator = objects[("Deployment", "osprey-coordinator")]
    for deployment, name in [(executor, "executor"), (coordinator, "coordinator")]:
        pod = deployment["spec"]["template"]["spec"]
        c = container(deployment, name)
        # Probes, limits, non-root, read-only root filesystem.
        assert c["readinessProbe"] and c["livenessProbe"], name
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(c["resources"][kind]), (name, c["resources"])
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert c["securityContext"]["readOnlyRootFilesystem"] is True, name
        assert c["securityContext"]["allowPrivilegeEscalation"] is False, name
        assert c["securityContext"]["capabilities"]["drop"] == ["ALL"], name
        # Secrets come from Secrets, never as literal values in the manifest.
        literal = [e["name"] for e in c.get("env", []) if "value" in e
                   and re.search("SECRET|PASSWORD|TOKEN|KEY", e["name"])]
        assert not literal, (name, literal)

    # Executors: discovered through a headless Service, drained on the way out.
    service = objects[("Service", "osprey-executor")]
    assert service["spec"]["clusterIP"] == "None"
    args = container(executor, "executor")["args"]
    assert "--listen=0.0.0.0:50061" in args and "--health-listen=0.0.0.0:8081" in args
    pod = executor["spec"]["template"]["spec"]
    grace = duration_arg(args, "shutdown-grace-secs")
    pre_stop = container(executor, "executor")["lifecycle"]["preStop"]["exec"]["command"]
    pre_stop_secs = int(pre_stop[-1]) if pre_stop[0].endswith("sleep") else 0
    assert pod["terminationGracePeriodSeconds"] >= grace + pre_stop_secs, (grace, pre_stop)
    readiness = container(executor, "executor")["readinessProbe"]["httpGet"]
    assert readiness["path"] == "/readyz"
    # The memory pool follows the container's limit.
    env = {e["name"]: e for e in container(executor, "executor")["env"]}
    assert env["OSPREY_EXECUTOR_MEMORY"]["value"].endswith("%")
    share = float(env["OSPREY_EXECUTOR_MEMORY"]["value"].rstrip("%"))
    assert 50 <= share <= 90
    spill = next(v for v in pod["volumes"] if v["name"] == "spill")
    assert "emptyDir" in spill
    assert any(m["mountPath"] == "/var/lib/osprey/spill"
               for m in container(executor, "executor")["volumeMounts"])
    limit = bytes_of(container(executor, "executor")["resources"]["limits"]["memory"])
    assert limit >= 1 << 30

    hpa = objects[("HorizontalPodAutoscaler", "osprey-executor")]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "osprey-executor"
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    pdb = objects[("PodDisruptionBudget", "osprey-executor")]
    assert pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "executor"

    # The coordinator: its config from a ConfigMap, the secrets mounted, a Service for clients.
    volumes = {v["name"]: v for v in coordinator["spec"]["template"]["spec"]["volumes"]}
    config_map = volumes["config"]["configMap"]["name"]
    assert ("ConfigMap", config_map) in objects
    config = objects[("ConfigMap", config_map)]["data"]["osprey.toml"]
    assert "executor_dns" in config and "osprey-executor" in config
    assert volumes["tls"]["secret"]["secretName"] == "osprey-tls"
    coordinator_env = {e["name"]: e for e in container(coordinator, "coordinator")["env"]}
    for name in ("OSPREY_CLUSTER_SECRET", "OSPREY_ADMIN_PASSWORD", "OSPREY_CATALOG_URL"):
        assert "secretKeyRef" in coordinator_env[name]["valueFrom"], name
    client_ports = {p["port"] for p in objects[("Service", "osprey")]["spec"]["ports"]}
    assert client_ports == {50051, 8080}

    # Network policies: executors take traffic only from the coordinator and each other, on
    # their gRPC port; the coordinator only on its client ports.
    executor_policy = objects[("NetworkPolicy", "osprey-executor-ingress")]["spec"]
    assert executor_policy["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "executor"
    [rule] = executor_policy["ingress"]
    sources = {s["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for s in rule["from"]}
    assert sources == {"coordinator", "executor"}
    assert [p["port"] for p in rule["ports"]] == [50061]
    coordinator_policy = objects[("NetworkPolicy", "osprey-coordinator-ingress")]["spec"]
    assert {p["port"] for r in coordinator_policy["ingress"] for p in r["ports"]} == {50051, 8080}

    # Mutual TLS inside the cluster, from a cert-manager certificate both pods mount: for
    # server and client authentication, naming what executors are checked for.
    certificate = objects[("Certificate", "osprey-cluster-tls")]["spec"]
    assert {"server auth", "client auth"} <= set(certificate["usages"])
    assert certificate["issuerRef"]["name"] == "osprey-cluster-ca"
    assert objects[("Certificate", "osprey-cluster-ca")]["spec"]["isCA"] is True
    assert "--allow-insecure-remote" not in args
    flags = dict(a.split("=", 1) for a in args if a.startswith("--cluster-tls-"))
    assert set(flags) == {"--cluster-tls-cert", "--cluster-tls-key", "--cluster-tls-ca",
                          "--cluster-tls-server-name"}, flags
    assert flags["--cluster-tls-server-name"] in certificate["dnsNames"]
    assert f'tls_server_name = "{flags["--cluster-tls-server-name"]}"' in config
    for deployment in (executor, coordinator):
        mounted = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        assert mounted["cluster-tls"]["secret"]["secretName"] == certificate["secretName"]


def test_dev_generates_its_secrets_and_prod_leaves_them_to_the_operator():
    dev = render("dev")
    prod = render("prod")
    dev_secrets = {name for kind, name in dev if kind == "Secret"}
    assert any(name.startswith("osprey-cluster") for name in dev_secrets)
    assert not [name for kind, name in prod if kind == "Secret"], "prod must not carry secrets"
    assert container(prod[("Deployment", "osprey-executor")], "executor")["image"] \
        .startswith("ghcr.io/")
    assert prod[("Deployment", "osprey-executor")]["spec"]["replicas"] >= 3


def test_compose_runs_a_laptop_cluster():
    compose = yaml.safe_load((ROOT / "deploy" / "compose" / "compose.yaml").read_text())
    services = compose["services"]
    executors = [name for name in services if name.startswith("executor")]
    assert len(executors) == 3
    assert {"coordinator", "postgres", "minio", "minio-bucket", "sample-data"} <= set(services)
    assert "postgres://" in services["coordinator"]["environment"]["OSPREY_CATALOG_URL"]
    # Client ports are published on the host's loopback only.
    assert all(port.startswith("127.0.0.1:") for port in services["coordinator"]["ports"])
    config = (ROOT / "deploy" / "compose" / "osprey.toml").read_text()
    # Mutual TLS between them, with one certificate naming each of them.
    certs = services["cluster-certs"]
    san = " ".join(certs["command"])
    for executor in executors:
        assert f"https://{executor}:50061" in config
        assert f"DNS:{executor}" in san
        assert services[executor]["depends_on"]["cluster-certs"]["condition"] == \
            "service_completed_successfully"
    assert "[cluster]" in config and "tls_ca" in config
    assert "allow_insecure_remote" not in config.split("[executor]")[1]
    assert "s3://lake" in config
    sample = (ROOT / "deploy" / "compose" / "sample-data.sql").read_text()
    assert "UNLOAD" in sample and "CREATE EXTERNAL TABLE" in sample


def test_dockerfile_is_multi_stage_slim_and_unprivileged():
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text, re.MULTILINE)
    assert len(stages) >= 2, stages
    build_image, runtime_image = stages[0][0], stages[-1][0]
    assert "rust" in build_image and "rust" not in runtime_image
    assert "slim" in runtime_image
    runtime = text[text.rindex("FROM "):]
    # Dependencies cached between builds, the binary copied from the build stage only.
    assert "--mount=type=cache" in text
    assert "COPY --from=build" in runtime
    assert not re.search(r"\bcargo\b|\brustc\b|build-essential|\bgcc\b", runtime)
    user = re.search(r"^USER\s+(\S+)", runtime, re.MULTILINE)
    assert user and not user.group(1).startswith(("0", "root"))
    assert re.search(r'^ENTRYPOINT .*osprey"\]', runtime, re.MULTILINE)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "target" in ignored and ".git" in ignored
