"""The deployment files cannot be started here (no Docker engine): check what can be checked — they
parse, name the services, volumes and files they rely on, and agree with each other and the code."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

from service.settings import Settings
from tests.helpers import REPO_ROOT

ROOT = REPO_ROOT


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_runs_two_replicas_on_one_postgres_behind_a_load_balancer():
    compose = _compose()
    services = compose["services"]
    assert set(services) == {"db", "minio", "minio-bucket", "migrate", "api-1", "api-2", "lb"}
    assert services["db"]["image"].startswith("postgres:")
    assert services["migrate"]["command"] == ["counterfeit", "db", "upgrade"]
    for name in ("api-1", "api-2"):
        replica = services[name]
        assert replica["command"] == ["counterfeit", "serve"] and replica["build"] == "."
        assert replica["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert replica["environment"]["COUNTERFEIT_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert "@db:5432/" in replica["environment"]["COUNTERFEIT_DATABASE_URL"]
        assert replica["volumes"] == [
            f"{name}-cache:/data"
        ]  # its own cache: images and snapshots are in the bucket
        assert replica["environment"]["COUNTERFEIT_BLOB_URL"] == "s3://counterfeit/blobs"
        assert replica["environment"]["AWS_ENDPOINT_URL"] == "http://minio:9000"
    assert (
        services["api-1"]["environment"]
        == services["api-2"]["environment"]
        == services["migrate"]["environment"]
    )
    assert set(compose["volumes"]) == {"postgres-data", "minio-data", "api-1-cache", "api-2-cache"}
    bucket = services["minio-bucket"]
    assert "mc mb -p local/counterfeit" in bucket["entrypoint"][-1]  # the bucket COUNTERFEIT_BLOB_URL names
    assert services["migrate"]["depends_on"]["minio-bucket"]["condition"] == "service_completed_successfully"
    assert services["db"]["volumes"] == ["postgres-data:/var/lib/postgresql/data"]
    for key in services["api-1"]["environment"]:
        if key.startswith("AWS_"):  # the S3 client's standard settings (botocore reads them)
            assert key in {
                "AWS_ENDPOINT_URL",
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_DEFAULT_REGION",
            }, key
        else:
            assert key.removeprefix("COUNTERFEIT_").lower() in Settings.model_fields, (
                f"{key} is not a setting"
            )


def test_the_load_balancer_config_exists_and_names_every_replica():
    lb = _compose()["services"]["lb"]
    source = lb["volumes"][0].split(":")[0]
    config = (ROOT / source).read_text()
    upstreams = set(re.findall(r"server\s+([\w-]+):8000", config))
    assert upstreams == {"api-1", "api-2"}
    assert set(lb["depends_on"]) == upstreams
    assert "X-Request-ID $request_id" in config and "client_header_timeout" in config
    assert re.search(r"^\s*EXPOSE 8000", (ROOT / "Dockerfile").read_text(), re.M)


def test_the_dockerfile_copies_what_exists():
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source


def test_gpu_script_parses_and_runs_existing_benchmarks():
    import re
    import subprocess

    script = REPO_ROOT / "bench" / "gpu.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    modules = set(re.findall(r"python3 -m (bench\.[a-z_]+)", script.read_text()))
    assert modules >= {"bench.embed", "bench.api", "bench.reindex"}
    for module in modules:
        assert (script.parent / f"{module.split('.')[1]}.py").is_file(), module
    # Every flag the script passes is one the benchmark takes (a renamed flag would fail only on the GPU machine).
    import sys

    for module in modules:
        flags = {
            flag
            for line in re.findall(rf"python3 -m {re.escape(module)} (.*)", script.read_text())
            for flag in re.findall(r"(--[a-z-]+)", line)
        }
        usage = subprocess.run(
            [sys.executable, "-m", module, "--help"], capture_output=True, text=True, cwd=script.parent.parent
        )
        assert usage.returncode == 0, usage.stderr
        assert flags <= set(re.findall(r"(--[a-z-]+)", usage.stdout)), (module, flags)


def test_layers_import_only_downwards():
    """index is a library (no service, no training); scoring runs on every check and needs only index."""
    import subprocess
    import sys

    code = (
        "import importlib, pkgutil, sys\n"
        "import index, scoring\n"
        "for package in (index, scoring):\n"
        "    for module in pkgutil.walk_packages(package.__path__, package.__name__ + '.'):\n"
        "        importlib.import_module(module.name)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'service', 'training', 'bench'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


@pytest.mark.slow
@pytest.mark.skipif(
    bool(os.environ.get("COUNTERFEIT_TEST_POSTGRES_URL")), reason="no database in it: the SQLite pass ran it"
)
def test_gpu_script_runs_every_step_end_to_end_on_the_cpu(tmp_path):
    """The GPU machine is lent for minutes: every step of bench/gpu.sh runs here first (CPU, tiny model, small
    counts) and prints its summary line, so a broken step is found before GPU time is spent on it."""
    import subprocess

    root = REPO_ROOT
    import sys

    # The script runs `python3`: this interpreter's (the project's virtual environment), whoever started pytest.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {
        **os.environ,
        "PATH": path,
        "OUT": str(tmp_path),
        "GPU_BENCH_DEVICE": "cpu",
        "GPU_BENCH_MODEL": "open_clip:tiny-random",
        "GPU_BENCH_SMALL": "1",
    }
    run = subprocess.run(
        ["bash", "bench/gpu.sh", str(tmp_path / "no-wheels")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    log = (tmp_path / "gpu.log").read_text()
    assert run.returncode == 0 and "STEP FAILED" not in log, log[-4000:]
    summaries = [line for line in log.splitlines() if line.startswith("SUMMARY")]
    assert [line.split()[1] for line in summaries[:7]] == [
        "identity",
        "embed",
        "embed",
        "embed",
        "embed-feed",
        "api",
        "reindex",
    ], summaries


K8S = REPO_ROOT / "deploy" / "k8s"


def _k8s_documents() -> list[dict]:
    import yaml

    return [doc for path in sorted(K8S.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_kubernetes_manifests_are_valid_against_the_kubernetes_schemas():
    """Offline (no cluster here): every document against the API schemas kubernetes-validate ships, strict
    (an unknown or misspelt field fails)."""
    import kubernetes_validate

    documents = _k8s_documents()
    kinds = sorted(doc["kind"] for doc in documents)
    assert kinds == [
        "CronJob",
        "CronJob",
        "Deployment",
        "Deployment",
        "HorizontalPodAutoscaler",
        "Job",
        "Service",
    ], kinds
    for doc in documents:
        kubernetes_validate.validate(doc, "1.30.0", strict=True)


def test_kubernetes_manifests_fit_the_service_they_deploy():
    """What schemas cannot see: the probes, commands, settings, names and labels must be this service's."""
    from typer.testing import CliRunner

    from service.cli import app
    from service.settings import Settings

    documents = _k8s_documents()
    by_kind: dict[str, list[dict]] = {}
    for doc in documents:
        by_kind.setdefault(doc["kind"], []).append(doc)
    pods = [d["spec"]["template"]["spec"] for d in by_kind["Deployment"] + by_kind["Job"]]
    pods += [c["spec"]["jobTemplate"]["spec"]["template"]["spec"] for c in by_kind["CronJob"]]
    settings = {f"COUNTERFEIT_{name.upper()}" for name in Settings.model_fields}
    runner = CliRunner()
    aws = {
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_DEFAULT_REGION",
    }  # botocore's own
    for pod in pods:
        # No shared filesystem: every volume is the pod's own cache; images and snapshots are in the bucket.
        assert all("emptyDir" in volume for volume in pod.get("volumes", [])), pod.get("volumes")
        for container in pod["containers"]:
            assert container["command"][0] == "counterfeit"
            assert runner.invoke(app, [*container["command"][1:], "--help"]).exit_code == 0, container[
                "command"
            ]
            unknown = {e["name"] for e in container["env"]} - settings - aws
            assert not unknown, f"not settings of the service: {unknown}"
            if container["command"] != ["counterfeit", "db", "upgrade"]:
                assert {"COUNTERFEIT_BLOB_URL", "COUNTERFEIT_DATABASE_URL"} <= {
                    e["name"] for e in container["env"]
                }
    for deployment in by_kind["Deployment"]:
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
        service = by_kind["Service"][0]
        assert service["spec"]["selector"].items() <= pod_labels.items()  # the Service reaches every replica
    [migrate] = by_kind["Job"]
    assert migrate["spec"]["template"]["spec"]["containers"][0]["command"] == ["counterfeit", "db", "upgrade"]
    assert {
        tuple(c["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"])
        for c in by_kind["CronJob"]
    } == {("counterfeit", "exchange", "pull"), ("counterfeit", "gc")}
    [hpa] = by_kind["HorizontalPodAutoscaler"]
    assert hpa["spec"]["scaleTargetRef"]["name"] in {d["metadata"]["name"] for d in by_kind["Deployment"]}
    gpu = [
        d
        for d in by_kind["Deployment"]
        if "nvidia.com/gpu" in d["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    ]
    assert (
        len(gpu) == 1
        and {"name": "COUNTERFEIT_DEVICE", "value": "cuda"}
        in gpu[0]["spec"]["template"]["spec"]["containers"][0]["env"]
    )


def test_make_serve_takes_port_and_host_from_the_command_line():
    """`make serve PORT=… HOST=…` reaches the server's options (it used to be ignored)."""
    import shutil
    import subprocess

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    # Run as a top-level make: under `make test` the inherited MAKEFLAGS would add directory lines.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}

    def planned(*args: str) -> str:
        lines = subprocess.run(
            ["make", "--no-print-directory", "-n", "serve", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        [serve] = [line for line in lines if "-m service serve" in line]
        return serve.rstrip()

    assert planned("PORT=8123", "HOST=0.0.0.0").endswith("serve --port 8123 --host 0.0.0.0")
    assert "--port" not in planned()  # the settings' own port (COUNTERFEIT_PORT) otherwise
