"""docker-compose.kafka.yml, checked statically (this machine has no Docker engine)."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from core.settings import SECRETS_DIR_VARIABLE, Settings
from tests.fixtures.paths import DASHBOARDS

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.kafka.yml"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def services(compose) -> dict:
    return compose["services"]


def test_every_image_tag_is_pinned(compose):
    for name, svc in services(compose).items():
        image = svc["image"]
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest", f"{name}: image {image!r} is not pinned"


def test_every_mounted_file_exists_in_the_repo(compose):
    for name, svc in services(compose).items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which does not exist"


def test_every_prometheus_target_is_a_compose_service_and_port(compose):
    targets_dir = ROOT / "monitoring" / "prometheus" / "compose-targets"
    config = yaml.safe_load((ROOT / "monitoring" / "prometheus" / "prometheus.yml").read_text())
    jobs = [*config["scrape_configs"], *config["alerting"]["alertmanagers"]]
    wanted = {f for job in jobs for sd in job["file_sd_configs"] for f in sd["files"]}
    assert {f"targets/{p.name}" for p in targets_dir.glob("*.json")} == wanted
    for path in targets_dir.glob("*.json"):
        for group in json.loads(path.read_text()):
            for target in group["targets"]:
                host, port = target.rsplit(":", 1)
                if host == "localhost":
                    continue  # Prometheus scraping itself
                assert host in services(compose), f"{target}: no service {host}"
                svc = services(compose)[host]
                container_ports = {p.rsplit(":", 1)[-1] for p in svc.get("ports", [])}
                command = svc.get("command", [])
                ui_port = command[command.index("--webui-port") + 1] if "--webui-port" in command else None
                assert (
                    port in container_ports or port == ui_port or svc.get("environment", {}).get("METRICS_PORT") == port
                ), target


def test_dependencies_wait_on_health_or_completion(compose):
    svcs = services(compose)
    for name, svc in svcs.items():
        depends = svc.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on must name conditions"
        for dep, rule in depends.items():
            condition = rule["condition"]
            assert condition in ("service_healthy", "service_completed_successfully"), (name, dep, condition)
            if condition == "service_healthy":
                assert "healthcheck" in svcs[dep], f"{name} waits for {dep} to be healthy, but it has no healthcheck"


def test_the_dashboards_mounted_into_grafana_are_the_ones_the_panel_test_evaluates(compose):
    mounts = {v.split(":")[1]: v.split(":")[0] for v in services(compose)["grafana"]["volumes"]}
    provider = yaml.safe_load((ROOT / "monitoring/grafana/provisioning/dashboards/shopstream.yml").read_text())
    path_in_container = provider["providers"][0]["options"]["path"]
    assert (ROOT / mounts[path_in_container]).resolve() == DASHBOARDS.resolve()
    assert list(DASHBOARDS.glob("*.json"))


def test_the_shopstream_services_run_real_shopstream_commands(compose):
    from infra.cli import app

    commands = {c.name or c.callback.__name__ for c in app.registered_commands}
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["shopstream"]' in dockerfile
    built = [(n, s) for n, s in services(compose).items() if s["image"].startswith("shopstream:")]
    assert {n for n, _ in built} >= {
        "producer",
        "stream",
        "exporter",
        "db-init",
        "topics-init",
        "spark-master",
        "spark-worker-1",
        "spark-worker-2",
    }
    for name, svc in built:
        if "entrypoint" in svc:  # the Spark master and workers: pyspark's spark-class, from the image's venv
            python = re.search(r"FROM python:(\d+\.\d+)", dockerfile).group(1)
            assert svc["entrypoint"] == [f"/opt/venv/lib/python{python}/site-packages/pyspark/bin/spark-class"], name
            assert svc["command"][0].startswith("org.apache.spark.deploy."), name
            continue
        assert svc["command"][0] in commands, f"{name}: `shopstream {svc['command'][0]}` does not exist"


def test_environment_names_match_the_settings_class(compose):
    from producers.options import ProduceOptions

    fields = {f"SHOPSTREAM_{f.upper()}" for f in Settings.model_fields} | {SECRETS_DIR_VARIABLE}
    # `shopstream produce`'s flags have their own variables (see `shopstream produce --help`)
    fields |= {f"SHOPSTREAM_PRODUCE_{f.removesuffix('_s').upper()}" for f in ProduceOptions.model_fields}
    text = COMPOSE.read_text() + (ROOT / ".env.example").read_text()
    used = set(re.findall(r"SHOPSTREAM_[A-Z_]+", text))
    assert used <= fields, f"not settings: {sorted(used - fields)}"


def test_docker_compose_config_accepts_the_file():
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip(
            "`docker compose` is not installed here (no Docker engine or compose plugin); "
            "the static checks above stand in for it"
        )
    out = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE), "--env-file", str(ROOT / ".env.example"), "config", "-q"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr


# --- defects a review against the images' own sources found (the clusters issue) -----------------
def test_every_published_port_is_on_loopback_only(compose):
    for name, svc in services(compose).items():
        for port in svc.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_the_spark_master_healthcheck_probes_the_address_it_binds(compose):
    master = services(compose)["spark-master"]
    host = master["environment"]["SPARK_MASTER_HOST"]
    assert f"/dev/tcp/{host}/7077" in " ".join(master["healthcheck"]["test"])
    for worker in ("spark-worker-1", "spark-worker-2"):
        assert f"spark://{host}:7077" in services(compose)[worker]["command"]
    assert "spark://" + host + ":7077" in services(compose)["stream"]["command"]


def test_the_spark_daemons_load_the_metrics_config_the_package_ships(compose):
    """Prometheus scrapes Spark's servlet on each daemon (compose-targets/spark.json): its config is in the image."""
    python = re.search(r"FROM python:(\d+\.\d+)", (ROOT / "Dockerfile").read_text()).group(1)
    shipped = f"/opt/venv/lib/python{python}/site-packages/infra/config/spark-metrics.properties"
    assert (ROOT / "infra/config/spark-metrics.properties").exists()
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["infra"]
    assert any(fnmatch.fnmatch("config/spark-metrics.properties", glob) for glob in package_data), package_data
    for name in ("spark-master", "spark-worker-1", "spark-worker-2"):
        assert services(compose)[name]["environment"]["SPARK_DAEMON_JAVA_OPTS"] == f"-Dspark.metrics.conf={shipped}"


def test_kafka_writes_its_log_to_its_volume(compose):
    kafka = services(compose)["kafka"]
    (mount,) = [v.split(":")[1] for v in kafka["volumes"]]
    assert kafka["environment"]["KAFKA_LOG_DIRS"] == mount


def test_postgres_is_healthy_only_once_it_answers_over_tcp(compose):
    probe = " ".join(services(compose)["postgres"]["healthcheck"]["test"])
    assert "pg_isready" in probe and "-h 127.0.0.1" in probe


def test_secrets_go_only_where_they_are_needed(compose):
    """File secrets (/run/secrets) where the image reads them; the superuser's only to PostgreSQL and db-init."""
    holders = {
        name: {(s if isinstance(s, str) else s["source"]) for s in svc.get("secrets", [])}
        for name, svc in services(compose).items()
    }
    assert {n for n, held in holders.items() if "postgres_superuser_password" in held} == {"postgres", "db-init"}
    assert {n for n, held in holders.items() if "registry_password" in held} == {"db-init"}
    for name, svc in services(compose).items():
        for variable, value in svc.get("environment", {}).items():
            if variable.endswith("PASSWORD"):  # in an environment only where the image reads no file
                assert name == "registry" and variable == "APICURIO_DATASOURCE_PASSWORD", (name, variable)
            assert "SUPERUSER" not in str(value), (name, variable)
    for name in ("postgres", "grafana", "pgadmin"):  # each image's own *_FILE convention
        env = services(compose)[name]["environment"]
        assert any(v.endswith("_FILE") and env[v].startswith("/run/secrets/") for v in env), name
    app = services(compose)["stream"]
    assert app["environment"][SECRETS_DIR_VARIABLE] == "/run/secrets"
    targets = {s["target"] for s in app["secrets"]}
    assert targets <= {f"SHOPSTREAM_{f.upper()}" for f in Settings.model_fields}, targets
    assert "PGADMIN_CONFIG_SERVER_MODE" not in services(compose)["pgadmin"].get("environment", {})
    assert ".env" in (ROOT / ".gitignore").read_text().split()


# --- what a compose user needs to lose nothing and see the truth (issue 30) ----------------------------
#: Every path where a service keeps state, in its container: each must be a named volume, or a recreate loses it.
STATE = {
    "kafka": ["/var/lib/kafka/data"],
    "postgres": ["/var/lib/postgresql/data"],
    "prometheus": ["/prometheus"],
    "alertmanager": ["/alertmanager"],
    "grafana": ["/var/lib/grafana"],
    "pgadmin": ["/var/lib/pgadmin"],
}
ONE_SHOT = {"db-init", "topics-init"}


def named_volumes(svc: dict) -> dict[str, str]:
    """container path -> volume name, for named volumes only (not the repository's files mounted read-only)."""
    found = {}
    for volume in svc.get("volumes", []):
        source, target = volume.split(":")[:2]
        if not source.startswith((".", "/")):
            found[target] = source
    return found


def test_every_state_path_is_on_a_named_volume(compose):
    stream = services(compose)["stream"]
    runtime = Settings(runtime_dir=stream["environment"]["SHOPSTREAM_RUNTIME_DIR"])
    from streaming.options import StreamOptions

    state = {
        **STATE,
        # the job's checkpoint, and the archive the upkeep writes before it drops a day from PostgreSQL
        "stream": [str(StreamOptions().checkpoint(runtime).parents[1]), str(runtime.archive_path)],
    }
    for name, paths in state.items():
        volumes = named_volumes(services(compose)[name])
        for path in paths:
            assert path in volumes, f"{name} keeps state in {path}, which is on no volume"
            assert volumes[path] in compose["volumes"], f"{name}: volume {volumes[path]} is not declared"
    dockerfile = (ROOT / "Dockerfile").read_text().rsplit("\nFROM ", 1)[1]
    for path in state["stream"]:  # made in the image, so that a new volume starts out owned by its user
        assert path in dockerfile, path


def test_restart_policies_and_init(compose):
    for name, svc in services(compose).items():
        assert svc.get("init") is True, f"{name}: no init (orphaned processes are never reaped)"
        if name in ONE_SHOT:
            policy, _, tries = svc["restart"].partition(":")
            assert policy == "on-failure" and 1 <= int(tries) <= 10, f"{name}: {svc['restart']} retries without end"
        else:
            assert svc["restart"] == "unless-stopped", f"{name}: {svc.get('restart')}"


def test_every_long_running_service_has_a_healthcheck(compose):
    for name, svc in services(compose).items():
        if name not in ONE_SHOT:
            assert "healthcheck" in svc, f"{name} is 'running' whether or not it works"


def test_no_host_port_is_hard_coded(compose):
    """Every published port is a variable with the embedded runtime's default: two stacks on one host can be
    told apart, and a taken port is moved without editing the file."""
    for name, svc in services(compose).items():
        for port in svc.get("ports", []):
            host = port.removeprefix("127.0.0.1:").rsplit(":", 1)[0]
            assert re.fullmatch(r"\$\{[A-Z_]+:-\d+\}", host), f"{name} publishes a fixed host port: {port}"


def test_every_service_has_a_memory_limit_and_the_readme_states_the_need(compose):
    def mib(value: str) -> int:
        number, unit = re.fullmatch(r"(\d+)([mg])", value).groups()
        return int(number) * (1024 if unit == "g" else 1)

    total = 0
    for name, svc in services(compose).items():
        assert "mem_limit" in svc, f"{name} has no memory limit"
        total += mib(svc["mem_limit"])
    readme = (ROOT / "README.md").read_text()
    stated = re.search(r"limits add up to ([\d.]+) GiB", readme)
    assert stated, "the README's compose section states the memory the limits add up to"
    assert abs(float(stated.group(1)) - total / 1024) < 0.1, (stated.group(1), total / 1024)
    heaps = {
        "kafka": services(compose)["kafka"]["environment"]["KAFKA_HEAP_OPTS"],
        "registry": services(compose)["registry"]["environment"]["JAVA_OPTS_APPEND"],
    }
    for name, options in heaps.items():
        assert "-Xmx" in options, f"{name}'s heap is not capped below its limit"


def test_the_producer_runs_without_end_and_loads_the_dimensions(compose):
    command = services(compose)["producer"]["command"]
    assert "--forever" in command and "--load-dimensions" in command and "--duration" not in command
    from producers.options import ProduceOptions

    ProduceOptions(forever=True, load_dimensions=True)  # the options the command's flags make are valid
    env = services(compose)["producer"]["environment"]
    assert {"SHOPSTREAM_PRODUCE_SEED", "SHOPSTREAM_PRODUCE_CUSTOMERS", "SHOPSTREAM_PRODUCE_PRODUCTS"} <= set(env)


def test_report_reaches_prometheus_from_a_container(compose):
    url = services(compose)["stream"]["environment"]["SHOPSTREAM_PROMETHEUS_URL"]
    assert Settings(prometheus_url=url).prometheus_endpoint == "http://prometheus:9090"
    assert "prometheus" in services(compose)


def test_the_image_holds_every_package_and_runs_unprivileged():
    dockerfile = (ROOT / "Dockerfile").read_text()
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    for package in (p.rstrip("*") for p in packages):
        assert f"COPY {package} {package}" in dockerfile, f"the image leaves out the {package} package"
    final = dockerfile.rsplit("\nFROM ", 1)[1]
    assert "maven" not in final and "\nUSER " in final
    assert ".runtime" in (ROOT / ".dockerignore").read_text().split()


# --- a real parse: compose-go, the library behind `docker compose config` ------------------------
@pytest.fixture(scope="module")
def compose_check(tmp_path_factory) -> Path:
    """infra/compose/check (Go, on compose-go), built once per session into .runtime/bin."""
    go = shutil.which("go") or "/usr/local/go/bin/go"
    if not Path(go).exists():
        pytest.fail("Go is missing: the compose file is parsed by a Go program on compose-go (install Go 1.26)")
    binary = Settings().runtime_dir / "bin" / "compose-check"
    import os

    built = subprocess.run(
        [go, "build", "-o", str(binary), "."],
        cwd=ROOT / "infra" / "compose" / "check",
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "GOFLAGS": "-buildvcs=false"},
    )
    assert built.returncode == 0, built.stderr
    return binary


def resolved(binary: Path, file: Path, env_file: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(binary), "-f", str(file), "-env-file", str(env_file)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin"},
    )


def test_compose_go_loads_the_file_with_the_example_env(compose_check):
    out = resolved(compose_check, COMPOSE, ROOT / ".env.example")
    assert out.returncode == 0, out.stderr
    project = json.loads(out.stdout)
    svcs = project["services"]
    # the anchors merged, the variables interpolated, and the secrets only where they belong
    assert project["secrets"]["writer_password"]["environment"] == "SHOPSTREAM_WRITER_PASSWORD"
    held = {name: {s["source"] for s in svc.get("secrets", [])} for name, svc in svcs.items()}
    assert held["stream"] == {"writer_password", "reader_password"}
    assert "postgres_superuser_password" in held["db-init"] and "postgres_superuser_password" not in held["stream"]
    assert svcs["registry"]["environment"]["APICURIO_DATASOURCE_PASSWORD"] == "change-me-registry"
    assert svcs["db-init"]["restart"] == "on-failure:5" and svcs["stream"]["restart"] == "unless-stopped"
    for name, svc in svcs.items():
        assert svc.get("init") is True and svc.get("mem_limit"), name
        for port in svc.get("ports", []):
            assert port["host_ip"] == "127.0.0.1", (name, port)
    assert svcs["stream"]["stop_grace_period"] == "1m0s"
    assert {"archive", "grafana-data", "alertmanager-data", "pgadmin-data"} <= set(project["volumes"])


def test_compose_go_refuses_what_docker_compose_would(compose_check, tmp_path):
    broken = tmp_path / "compose.yml"
    broken.write_text("services:\n  a:\n    image: busybox:1.36\n    restart_policy: always\n")
    out = resolved(compose_check, broken, ROOT / ".env.example")
    assert out.returncode == 1 and "restart_policy" in out.stderr, out.stderr
    missing = tmp_path / "empty.env"
    missing.write_text("")
    out = resolved(compose_check, COMPOSE, missing)  # the file requires its secrets: `cp .env.example .env`
    assert out.returncode == 1 and "copy .env.example to .env" in out.stderr, out.stderr
