"""The Docker deployment (docker-compose.yml, Dockerfile, deploy/) as Docker would run it.

There is no Docker engine here, but Debian's `docker-compose` 1.29 validates and normalises
a compose file without one (`docker-compose config`): variables substituted, anchors and
merge keys resolved. The tests read that normalised form, so they check what the engine
would get, not how the YAML happens to be written.
"""

from __future__ import annotations

import importlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml

from eventflow_assets.local.dagster_instance import instance_config
from eventflow_assets.local.kafka_broker import KAFKA_VERSION

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker-compose.yml"
DAGSTER_YAML = REPO / "deploy" / "dagster.yaml"
DOCKERFILE = REPO / "Dockerfile"

# The broker `eventflow up` embeds and the one compose runs are the same Apache Kafka.
KAFKA_IMAGE = f"apache/kafka:{KAFKA_VERSION}"
APP_SERVICES = {"eventflow-streaming", "eventflow-producer", "dagster-webserver", "dagster-daemon",
                "eventflow-dashboard"}
DAGSTER_SERVICES = {"dagster-webserver", "dagster-daemon"}
ALL_SERVICES = APP_SERVICES | {"kafka", "kafka-init", "postgres"}
# topic -> (partitions, retention.ms), as in docs/contracts.md: 7, 7 and 30 days.
TOPICS = {
    "user-events": (3, 7 * 24 * 3600 * 1000),
    "product-view": (3, 7 * 24 * 3600 * 1000),
    "orders": (3, 30 * 24 * 3600 * 1000),
}
DEPENDS_ON = {
    "kafka": {},
    "postgres": {},
    "kafka-init": {"kafka": "service_healthy"},
    "eventflow-streaming": {"kafka-init": "service_completed_successfully", "postgres": "service_healthy"},
    "eventflow-producer": {"kafka-init": "service_completed_successfully"},
    "dagster-webserver": {"kafka-init": "service_completed_successfully", "postgres": "service_healthy"},
    "dagster-daemon": {"postgres": "service_healthy", "dagster-webserver": "service_healthy"},
    "eventflow-dashboard": {"postgres": "service_healthy"},
}
# (service, published port) -> host address it binds; None means all interfaces.
PUBLISHED = {
    ("dagster-webserver", 3000): "127.0.0.1",
    ("eventflow-dashboard", 8501): "127.0.0.1",
    ("kafka", 9094): "127.0.0.1",
    ("postgres", 5432): "127.0.0.1",
}
# The UIs without a login: published beyond this host only when EVENTFLOW_PUBLISH_ADDRESS says so.
UIS = {("dagster-webserver", 3000), ("eventflow-dashboard", 8501)}
PASSWORD_REF = "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD (environment or .env)}"
FIXTURE_PASSWORD = "fixture-pw"
# Services running a JVM: a memory limit each, so that one cannot starve the others.
JVM_SERVICES = {"kafka", "eventflow-streaming", "dagster-daemon"}
PG_CONNECTION_KEYS = {"username", "password", "hostname", "db_name", "port"}


def compose_config(tmp_dir: Path, **env: str) -> dict:
    """`docker-compose config` of the repo's file, parsed, with exactly `env` as the
    user's POSTGRES_* and EVENTFLOW_* settings (an empty --env-file keeps a developer's .env out)."""
    result = _run_config(tmp_dir, **env)
    assert result.returncode == 0, f"docker-compose config rejected the file:\n{result.stderr}"
    return yaml.safe_load(result.stdout)


def _run_config(tmp_dir: Path, **env: str) -> subprocess.CompletedProcess:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.fail("`docker-compose` is not installed: install the Debian package docker-compose "
                    "(apt-get install -y docker-compose; the project's setup script does this). "
                    "It validates the compose file without a Docker engine.")
    env_file = tmp_dir / "empty.env"
    env_file.write_text("")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "COMPOSE_", "EVENTFLOW_"))}
    environ.update(env)
    return subprocess.run([exe, "--env-file", str(env_file), "-f", str(COMPOSE_FILE), "config"],
                          cwd=REPO, env=environ, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def services(tmp_path_factory) -> dict:
    return compose_config(tmp_path_factory.mktemp("compose"), POSTGRES_PASSWORD=FIXTURE_PASSWORD)["services"]


def _env(service: dict) -> dict[str, str]:
    return {k: str(v) for k, v in service.get("environment", {}).items()}


def _mounts(service: dict) -> dict[str, str]:
    """container path -> source (named volume or host path) of each volume entry."""
    mounts = {}
    for entry in service.get("volumes", []):
        if isinstance(entry, dict):
            mounts[entry["target"]] = entry["source"]
        else:
            source, target = entry.split(":")[:2]
            mounts[target] = source
    return mounts


def _published(service: dict) -> dict[int, tuple[int, str | None]]:
    """published port -> (container port, host address or None)."""
    ports = {}
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            ports[int(entry["published"])] = (int(entry["target"]), entry.get("host_ip"))
        else:
            parts = entry.split("/")[0].split(":")
            host = parts[0] if len(parts) == 3 else None
            ports[int(parts[-2])] = (int(parts[-1]), host)
    return ports


def _healthcheck_text(service: dict) -> str:
    check = service.get("healthcheck")
    assert check and not check.get("disable"), "no healthcheck"
    test = check["test"]
    assert test[0] in ("CMD", "CMD-SHELL"), test
    return " ".join(test[1:])


def test_compose_file_has_no_obsolete_version_key():
    # Compose ignores `version:` (the Compose Specification) and current releases warn about it.
    assert "version" not in yaml.safe_load(COMPOSE_FILE.read_text())


def test_exactly_the_expected_services(services):
    assert set(services) == ALL_SERVICES
    for name, service in services.items():
        assert "zookeeper" not in name and "zookeeper" not in service.get("image", ""), name


def test_kafka_is_single_node_kraft(services):
    kafka = services["kafka"]
    env = _env(kafka)
    assert kafka["image"] == KAFKA_IMAGE
    assert KAFKA_VERSION.split(".")[0] == "4"  # docs/contracts.md: Apache Kafka 4.x
    assert not any("ZOOKEEPER" in key for key in env)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}

    listeners = dict(item.split("://") for item in env["KAFKA_LISTENERS"].split(","))
    advertised = dict(item.split("://") for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    protocols = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert listeners["PLAINTEXT"] == ":9092" and listeners["CONTROLLER"] == ":9093"
    assert advertised["PLAINTEXT"] == "kafka:9092"  # what the other containers are given
    assert "CONTROLLER" not in advertised
    assert set(listeners) <= set(protocols) and set(advertised) <= set(listeners)
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] == "CONTROLLER"
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] == "PLAINTEXT"

    # The only voter is this node, reached on its controller listener.
    assert env["KAFKA_NODE_ID"] == "1"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"

    # Replication follows the cluster: every replicated topic, internal ones included, has as
    # many replicas as there are brokers, and needs at most that many in sync.
    brokers = _kafka_brokers(services)
    assert brokers == 1
    for key in ("KAFKA_DEFAULT_REPLICATION_FACTOR", "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
                "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
                "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR"):
        assert env[key] == str(brokers), key
    for key in ("KAFKA_MIN_INSYNC_REPLICAS", "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
                "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR"):
        assert 1 <= int(env[key]) <= brokers, key
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    # The data survives a container re-creation: log.dirs is a named volume.
    assert _mounts(kafka)[env["KAFKA_LOG_DIRS"]] == "kafka-data"


def _kafka_brokers(services: dict) -> int:
    """How many brokers the compose cluster has: the Kafka services, every one a KRaft voter."""
    nodes = [s for s in services.values() if s.get("image") == KAFKA_IMAGE
             and "KAFKA_PROCESS_ROLES" in s.get("environment", {})]
    voters = _env(nodes[0])["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")
    assert len(voters) == len(nodes)
    return len(nodes)


def _topic_commands(command_text: str) -> list[list[str]]:
    return [shlex.split(line) for line in command_text.splitlines() if "kafka-topics.sh" in line
            and "--create" in line]


def _option(argv: list[str], name: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == name]


def test_kafka_init_creates_the_three_topics_idempotently(services):
    init = services["kafka-init"]
    assert init["image"] == KAFKA_IMAGE
    assert init.get("restart", "no") == "no"  # a one-shot job that others wait for
    command = init["command"]
    assert command[:2] == ["/bin/bash", "-ec"], "without -e a failed creation would exit 0"
    created = {}
    for argv in _topic_commands(command[2]):
        assert argv[0] == "/opt/kafka/bin/kafka-topics.sh"
        assert "--if-not-exists" in argv
        assert _option(argv, "--bootstrap-server") == ["kafka:9092"]
        # As many replicas as brokers (one here); never more, or the creation fails.
        assert _option(argv, "--replication-factor") == [str(_kafka_brokers(services))]
        (topic,) = _option(argv, "--topic")
        configs = dict(item.split("=", 1) for item in _option(argv, "--config"))
        assert topic not in created
        created[topic] = (int(*_option(argv, "--partitions")), int(configs.pop("retention.ms")))
        assert configs == {}
    assert created == TOPICS



def test_topic_partitions_reach_kafka_init_and_every_eventflow_service(tmp_path):
    services = compose_config(tmp_path, POSTGRES_PASSWORD=FIXTURE_PASSWORD, EVENTFLOW_TOPIC_PARTITIONS="6")["services"]
    created = {_option(argv, "--topic")[0]: _option(argv, "--partitions")
               for argv in _topic_commands(services["kafka-init"]["command"][2])}
    assert created == {t: ["6"] for t in TOPICS}
    apps = {name for name, s in services.items() if "EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS" in _env(s)}
    assert apps and {name for name in apps if _env(services[name]).get("EVENTFLOW_TOPIC_PARTITIONS") == "6"} == apps

def test_app_services_reach_kafka_and_postgres_by_service_name(services):
    pg_env = _env(services["postgres"])
    for name in APP_SERVICES:
        service = services[name]
        env = _env(service)
        assert service["image"] == "eventflow:latest" and Path(service["build"]["context"]) == REPO, name
        assert env["EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092", name
        url = urlsplit(env["EVENTFLOW_POSTGRES_URL"])
        assert (url.scheme, url.hostname, url.port) == ("postgresql", "postgres", 5432), name
        assert url.path == "/" + pg_env["POSTGRES_DB"], name
        assert (url.username, unquote(url.password)) == (pg_env["POSTGRES_USER"], pg_env["POSTGRES_PASSWORD"])
        assert env["EVENTFLOW_HOME"] == "/var/lib/eventflow", name
    assert _mounts(services["eventflow-streaming"])["/var/lib/eventflow"] == "streaming-state"


def test_commands(services):
    assert services["eventflow-streaming"]["command"] == ["eventflow", "stream"]
    assert services["eventflow-producer"]["command"] == ["eventflow", "produce"]
    assert services["dagster-webserver"]["command"] == [
        "dagster-webserver", "-h", "0.0.0.0", "-p", "3000", "-w", "workspace.yaml"]
    assert services["dagster-daemon"]["command"] == ["dagster-daemon", "run", "-w", "workspace.yaml"]
    assert services["eventflow-dashboard"]["command"] == [
        "eventflow", "dashboard", "--host", "0.0.0.0", "--port", "8501"]
    # Synthetic events only on demand: a real deployment's applications publish their own.
    assert services["eventflow-producer"]["profiles"] == ["demo"]
    assert all("profiles" not in s for name, s in services.items() if name != "eventflow-producer")
    # The programs and the options used exist in the versions the project installs.
    bindir = Path(sys.executable).parent
    for argv, options in ((["eventflow", "produce", "--help"], ["--rate"]),
                          (["eventflow", "stream", "--help"], ["--available-now"]),
                          (["eventflow", "status", "--help"], ["--max-silence"]),
                          (["eventflow", "dashboard", "--help"], ["--host", "--port"]),
                          (["dagster-daemon", "liveness-check", "--help"], ["heartbeats"]),
                          (["dagster-daemon", "run", "--help"], ["--workspace"]),
                          (["dagster-webserver", "--help"], ["--workspace", "--host", "--port"])):
        result = subprocess.run([str(bindir / argv[0]), *argv[1:]], capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 0, result.stderr
        assert all(option in result.stdout for option in options), argv


def test_start_order(services):
    for name, service in services.items():
        depends = {dep: spec["condition"] for dep, spec in service.get("depends_on", {}).items()}
        assert depends == DEPENDS_ON[name], name
        for dep, condition in depends.items():
            if condition == "service_healthy":
                _healthcheck_text(services[dep])


def test_healthchecks(services):
    assert _healthcheck_text(services["kafka"]) == \
        "/opt/kafka/bin/kafka-broker-api-versions.sh --bootstrap-server localhost:9092"
    assert _healthcheck_text(services["postgres"]).startswith("pg_isready ")
    webserver = _healthcheck_text(services["dagster-webserver"])
    assert "urllib.request.urlopen('http://localhost:3000/server_info'" in webserver
    assert HEALTHCHECKS == {name: _healthcheck_text(services[name]) for name in HEALTHCHECKS}
    for name in APP_SERVICES - {"eventflow-producer"}:
        _healthcheck_text(services[name])  # every long-running EventFlow service has one


# The health checks whose commands test_up.py runs against a live local stack (same commands,
# with the local ports in place of the containers' own).
HEALTHCHECKS = {
    "eventflow-streaming": "eventflow status --max-silence 120",
    "dagster-daemon": "dagster-daemon liveness-check",
    "eventflow-dashboard": "python -c import urllib.request; "
                           "urllib.request.urlopen('http://localhost:8501/health', timeout=5)",
}


def test_jvm_services_have_resource_limits(services):
    for name in JVM_SERVICES:
        assert services[name].get("mem_limit"), name
        assert float(services[name].get("cpus", 0)) > 0, name
    heap = re.search(r"-Xmx(\d+)([mg])", _env(services["kafka"])["KAFKA_HEAP_OPTS"])
    heap_bytes = int(heap.group(1)) * (2**30 if heap.group(2) == "g" else 2**20)
    limit = services["kafka"]["mem_limit"]
    limit_bytes = limit if isinstance(limit, int) else int(limit[:-1]) * {"g": 2**30, "m": 2**20}[limit[-1]]
    assert heap_bytes < limit_bytes


def _published_hosts(services: dict) -> dict:
    return {(name, port): host for name, service in services.items()
            for port, (target, host) in _published(service).items()}


def test_everything_is_published_on_localhost_only(services):
    assert _published_hosts(services) == PUBLISHED
    for (name, port), _host in PUBLISHED.items():
        assert _published(services[name])[port][0] == port
    # The host listener that 9094 publishes is advertised under a name the host resolves.
    assert "HOST://localhost:9094" in _env(services["kafka"])["KAFKA_ADVERTISED_LISTENERS"]


def test_the_uis_go_beyond_localhost_only_when_asked(tmp_path):
    opened = compose_config(tmp_path, POSTGRES_PASSWORD=FIXTURE_PASSWORD, EVENTFLOW_PUBLISH_ADDRESS="0.0.0.0")
    assert _published_hosts(opened["services"]) == {key: ("0.0.0.0" if key in UIS else host)
                                                    for key, host in PUBLISHED.items()}


def test_postgres_creates_the_dagster_database(services):
    postgres = services["postgres"]
    assert postgres["image"] == "postgres:16"
    mounts = _mounts(postgres)
    assert mounts["/var/lib/postgresql/data"] == "postgres-data"
    init_dir = Path(mounts["/docker-entrypoint-initdb.d"])
    assert init_dir == REPO / "deploy" / "postgres-init"
    script = (init_dir / "01-dagster-db.sql").read_text()
    for name in DAGSTER_SERVICES:
        db = _env(services[name])["DAGSTER_PG_DB"]
        assert re.search(rf"^CREATE DATABASE {db};$", script, re.MULTILINE), name


def test_dagster_yaml_takes_every_connection_value_from_the_environment(services):
    config = yaml.safe_load(DAGSTER_YAML.read_text())
    assert set(config["storage"]) == {"postgres"}
    db = dict(config["storage"]["postgres"]["postgres_db"])
    assert db.pop("scheme") == "postgresql+psycopg2"
    assert set(db) == PG_CONNECTION_KEYS
    assert all(set(value) == {"env"} for value in db.values()), db
    # The same run queue, pools, monitoring and retries as `eventflow up`'s instance.
    local = instance_config("postgresql://u@h/d")
    shared = ("run_coordinator", "concurrency", "run_monitoring", "run_retries", "auto_materialize", "freshness",
              "retention")
    assert {k: config[k] for k in shared} == {k: local[k] for k in shared}
    assert config["telemetry"] == {"enabled": False}

    pg_env = _env(services["postgres"])
    expected = {"hostname": "postgres", "port": "5432", "username": pg_env["POSTGRES_USER"],
                "password": pg_env["POSTGRES_PASSWORD"]}
    for name in DAGSTER_SERVICES:
        env = _env(services[name])
        values = {key: env[ref["env"]] for key, ref in db.items()}  # KeyError: variable not set
        assert {k: values[k] for k in expected} == expected, name
        assert env["DAGSTER_HOME"] == "/opt/dagster/dagster_home", name
        # The daemon runs the jobs, the webserver shows their compute logs: one storage.
        assert _mounts(services[name])["/opt/dagster/dagster_home/storage"] == "dagster-storage", name


def test_without_a_password_compose_refuses_to_start(tmp_path):
    result = _run_config(tmp_path)
    assert result.returncode != 0
    assert "set POSTGRES_PASSWORD (environment or .env)" in result.stderr


def test_credentials_are_substituted_not_hardcoded(tmp_path):
    secret = "n0t-the-default"
    services = compose_config(tmp_path, POSTGRES_USER="ops", POSTGRES_PASSWORD=secret,
                              POSTGRES_DB="analytics")["services"]
    assert _env(services["postgres"]) == {"POSTGRES_USER": "ops", "POSTGRES_PASSWORD": secret,
                                          "POSTGRES_DB": "analytics"}
    for name in APP_SERVICES:
        url = urlsplit(_env(services[name])["EVENTFLOW_POSTGRES_URL"])
        assert (url.username, url.password, url.path) == ("ops", secret, "/analytics"), name
    for name in DAGSTER_SERVICES:
        env = _env(services[name])
        assert (env["DAGSTER_PG_USERNAME"], env["DAGSTER_PG_PASSWORD"]) == ("ops", secret), name
    # In the source, every password is the required substitution (no default), and nothing else
    # in the deployment files holds one.
    source = COMPOSE_FILE.read_text()
    refs = [m.group(1) for m in re.finditer(r"^\s*\w*PASSWORD\w*: *(.+)$", source, re.MULTILINE)]
    assert len(refs) == 2 and set(refs) == {PASSWORD_REF}
    userinfos = re.findall(r"postgres(?:ql)?://(.*?)@postgres:", source)
    assert userinfos and set(userinfos) == {"${POSTGRES_USER:-eventflow}:" + PASSWORD_REF}
    for path in (DOCKERFILE, DAGSTER_YAML, *(REPO / "deploy" / "postgres-init").iterdir()):
        assert not re.search(r"password[ \t]*[:=][ \t]*['\"]?\w", path.read_text(), re.IGNORECASE), path


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), " ".join(rest.split())))
    return instructions


def _image_stage() -> list[tuple[str, str]]:
    """The instructions of the image's own (last) stage, from its FROM on."""
    instructions = _dockerfile_instructions()
    start = max(i for i, (kw, _) in enumerate(instructions) if kw == "FROM")
    return instructions[start:]


WHEEL_INSTALL = "pip install --no-cache-dir /tmp/wheels/*.whl && rm -rf /tmp/wheels"


def test_dockerfile_installs_the_wheel_built_in_its_build_stage():
    """The image runs the wheel (sql/ and jobs/ inside the package), as `pip install` of a release
    gives it: no editable install, no source tree in the image."""
    instructions = _dockerfile_instructions()
    stages = [i for i, (kw, _) in enumerate(instructions) if kw == "FROM"]
    assert len(stages) == 2 and instructions[0] == ("FROM", "python:3.11-slim-bookworm AS build")
    build = instructions[:stages[1]]
    assert [arg for kw, arg in build if kw == "RUN"] == ["pip wheel --no-cache-dir --no-deps --wheel-dir /wheels ."]
    assert {arg.split()[0] for kw, arg in build if kw == "COPY"} >= {"eventflow_assets", "jobs", "sql"}
    image = _image_stage()
    assert ("COPY", "--from=build /wheels /tmp/wheels") in image
    assert WHEEL_INSTALL in [arg for kw, arg in image if kw == "RUN"]
    assert not [arg for kw, arg in instructions if kw == "RUN" and re.search(r"pip install\b.*(-e\b|--editable)", arg)]
    copied = {arg.split()[0] for kw, arg in image if kw == "COPY" and not arg.startswith("--from")}
    assert copied == {"workspace.yaml", "deploy/dagster.yaml"}, copied


def test_dockerfile_builds_a_spark_ready_non_root_image():
    instructions = _image_stage()
    assert instructions[0] == ("FROM", "python:3.11-slim-bookworm")
    runs = [arg for kw, arg in instructions if kw == "RUN"]
    (apt,) = [r for r in runs if "apt-get install" in r]
    install = apt.split("apt-get install", 1)[1].split("&&")[0].split()
    assert {"-y", "--no-install-recommends", "openjdk-17-jre-headless"} <= set(install)
    assert "rm -rf /var/lib/apt/lists/*" in apt
    assert WHEEL_INSTALL in runs

    env = dict(re.findall(r"(\w+)=(\S+)", " ".join(arg for kw, arg in instructions if kw == "ENV")))
    assert env["PYSPARK_PYTHON"] == "python"
    assert env["JAVA_HOME"] == "/usr/lib/jvm/java-17-openjdk-amd64"
    assert env["DAGSTER_HOME"] == "/opt/dagster/dagster_home"
    assert ("COPY", "deploy/dagster.yaml $DAGSTER_HOME/dagster.yaml") in instructions
    assert ("WORKDIR", "/opt/eventflow") in instructions
    users = [arg for kw, arg in instructions if kw == "USER"]
    assert users and users[-1] == "eventflow"


def test_dockerfile_resolves_the_spark_jars_at_build_time(services):
    """The Kafka connector and the JDBC driver come from Maven Central into the image's cache
    while it is built; the containers find them there (same XDG_CACHE_HOME), offline."""
    instructions = _dockerfile_instructions()
    text = DOCKERFILE.read_text()
    # The JDBC driver is no longer Debian's file.
    assert "libpostgresql-jdbc-java" not in text and "/usr/share/java/postgresql.jar" not in text

    steps = [(i, arg) for i, (kw, arg) in enumerate(instructions) if kw == "RUN"]
    (pip_at,) = [i for i, arg in steps if arg == WHEEL_INSTALL]
    (resolve_at, resolve), = [(i, arg) for i, arg in steps if "spark_jars()" in arg]
    assert pip_at < resolve_at, "the jars are resolved by the installed package"
    command = shlex.split(resolve)
    assert command[:2] == ["python", "-c"] and len(command) == 3, resolve
    imported = re.fullmatch(r"from ([\w.]+) import (\w+); \2\(\)", command[2])
    assert imported, command[2]
    module, name = imported.groups()
    assert (module, name) == ("eventflow_assets.processing.spark", "spark_jars")
    assert callable(getattr(importlib.import_module(module), name)), f"{module}.{name} does not exist"
    java_at = max(i for i, (kw, arg) in enumerate(instructions)
                  if kw == "RUN" and re.search(r"bin/java\"? -version", arg))
    assert java_at < resolve_at, "Ivy runs on the Java that the image checked"

    # One value for the build and for every container: set before the resolution and never again.
    cache_envs = [(i, arg) for i, (kw, arg) in enumerate(instructions)
                  if kw == "ENV" and re.search(r"\bXDG_CACHE_HOME=", arg)]
    assert len(cache_envs) == 1 and cache_envs[0][0] < resolve_at, cache_envs
    (cache,) = re.findall(r"\bXDG_CACHE_HOME=(\S+)", cache_envs[0][1])
    assert cache.startswith("/") and "$" not in cache, cache
    for name in APP_SERVICES:
        service = services[name]
        assert "XDG_CACHE_HOME" not in _env(service), name
        # A volume over (or inside) the cache would hide the image's jars, or keep an old build's.
        for target in map(Path, _mounts(service)):
            assert not (target == Path(cache) or target in Path(cache).parents
                        or Path(cache) in target.parents), (name, target)
    # The jars are resolved before the image switches to its unprivileged user, who only reads them.
    assert resolve_at < max(i for i, (kw, _) in enumerate(instructions) if kw == "USER")


def test_docker_build_context_has_what_the_dockerfile_copies():
    ignored = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    assert {".git", ".venv", ".eventflow", "*.egg-info", ".pytest_cache"} <= set(ignored)
    assert any("__pycache__" in pattern for pattern in ignored)
    sources = []
    for keyword, arg in _dockerfile_instructions():
        if keyword == "COPY" and not arg.startswith("--from"):  # --from: another stage's files
            sources += [s for s in arg.split()[:-1] if not s.startswith("--")]
    assert {"pyproject.toml", "README.md", "workspace.yaml", "eventflow_assets", "jobs", "sql",
            "deploy/dagster.yaml"} <= set(sources)
    missing = [s for s in sources if not (REPO / s).exists()]
    assert not missing, f"the image build would fail: {missing} not in the repository"
    for source in sources:
        top = source.split("/")[0]
        assert not any(Path(top).match(pattern) for pattern in ignored), f"{source} is in .dockerignore"


def test_dagster_instance_from_deploy_yaml_runs_on_postgres_with_psycopg2(pg_url, tmp_path, monkeypatch):
    """The instance the containers get, pointed at a real PostgreSQL: storage works (the
    NOTIFY that breaks under psycopg 3 included) and the driver is psycopg2."""
    from dagster import DagsterInstance, asset, materialize
    from dagster._core.run_coordinator import QueuedRunCoordinator

    url = urlsplit(pg_url)
    monkeypatch.setenv("DAGSTER_PG_USERNAME", url.username)
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", unquote(url.password))
    monkeypatch.setenv("DAGSTER_PG_HOST", url.hostname)
    monkeypatch.setenv("DAGSTER_PG_PORT", str(url.port))
    monkeypatch.setenv("DAGSTER_PG_DB", url.path.lstrip("/"))
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DAGSTER_YAML, home / "dagster.yaml")

    @asset
    def probe() -> int:
        return 1

    with DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        assert instance.run_storage._engine.dialect.driver == "psycopg2"  # noqa: SLF001
        assert materialize([probe], instance=instance).success
        (run,) = instance.get_runs()
        assert run.is_success
