"""docker-compose.yml and infra/Dockerfile, checked offline (no Docker engine runs here).

What compose would only find out at `up` time is checked against our own code instead: every
command parses with the `fleet` parser, every FLEET_* variable is a declared setting and its
value passes that setting's validation, the healthchecks' Python runs against a real /metrics
endpoint, and the secure profile's paths line up between the one-shot that writes the files,
Mosquitto and the bridges.
"""

from __future__ import annotations

import http.server
import importlib
import os
import re
import shlex
import socket
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.cli import build_parser
from services.common.settings import Settings
from services.stack.secure import BRIDGE_FILE, CARS_FILE, PASSWORD_FILE
from services.stack.settings import StackSettings

ROOT = Path(__file__).resolve().parents[3]
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)  # YAML merge keys (<<) resolved, as compose does
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
DOCKERFILE = (ROOT / "infra" / "Dockerfile").read_text()
FLEET_IMAGE = SERVICES["topics"]["image"]

# What infra/compose/three-brokers.env sets (docker-compose.yml's header): the values that make
# the three nodes one cluster.
THREE_BROKERS = {
    "COMPOSE_PROFILES": "three-brokers",
    "KAFKA_CLUSTER_VOTERS": "1@kafka:9093,2@kafka-2:9093,3@kafka-3:9093",
    "KAFKA_CLUSTER_REPLICATION": "3",
    "KAFKA_CLUSTER_MIN_ISR": "2",
    "KAFKA_CLUSTER_BOOTSTRAP": "kafka:29092,kafka-2:29092,kafka-3:29092",
}

_VAR = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


def interpolate(value: Any, environ: dict[str, str]) -> Any:
    """Compose's `${VAR:-default}` / `$$` interpolation, over a whole parsed document."""
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            if m.group(0) == "$$":
                return "$"
            name = m.group(1) or m.group(3)
            return environ.get(name) or m.group(2) or ""

        return _VAR.sub(sub, value)
    if isinstance(value, list):
        return [interpolate(v, environ) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v, environ) for k, v in value.items()}
    return value


def active(doc: dict[str, Any], profiles: set[str]) -> dict[str, dict[str, Any]]:
    """The services `docker compose --profile ...` would start."""
    return {
        name: svc
        for name, svc in doc["services"].items()
        if not svc.get("profiles") or profiles & set(svc["profiles"])
    }


DEFAULT = interpolate(COMPOSE, {})
THREE = interpolate(COMPOSE, THREE_BROKERS)


def fleet_services(doc: dict[str, Any] = DEFAULT) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in doc["services"].items() if svc.get("image") == FLEET_IMAGE}


def dockerfile_entrypoint() -> list[str]:
    line = [ln for ln in DOCKERFILE.splitlines() if ln.startswith("ENTRYPOINT ")][-1]
    return yaml.safe_load(line.removeprefix("ENTRYPOINT "))


def fleet_argvs(svc: dict[str, Any]) -> list[list[str]]:
    """Each `fleet ...` argument list a fleet service runs (directly or from its shell script)."""
    entrypoint = svc.get("entrypoint", dockerfile_entrypoint())
    command = svc.get("command", [])
    if entrypoint[0] == "fleet":
        return [entrypoint[1:] + command]
    assert entrypoint[0] in ("/bin/sh", "sh"), entrypoint
    lexer = shlex.shlex(command[0], posix=True, punctuation_chars=";&|")
    lexer.whitespace = " \t"  # keep newlines as separators between commands
    argvs, current = [], []
    for token in [*lexer, "\n"]:
        if token in ("\n", ";", "&&", "||", "|") or token.startswith(";"):
            words = current
            while words[:1] and words[0] in ("then", "else", "do", "exec"):
                words = words[1:]
            if words[:1] == ["fleet"]:
                argvs.append(words[1:])
            current = []
        else:
            current.append(token)
    return argvs


_DECLARES_SETTING = re.compile(r'env\(\s*"FLEET_')


def settings_classes() -> list[type[Settings]]:
    """Every Settings dataclass in the code: the modules that declare an env("FLEET_...")."""
    for package in ("services", "simulators", "schemas"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if _DECLARES_SETTING.search(path.read_text()):
                module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
                importlib.import_module(module)

    def walk(cls: type) -> Iterator[type]:
        for sub in cls.__subclasses__():
            yield sub
            yield from walk(sub)

    return [cls for cls in walk(Settings) if any(True for _ in cls.fields())]


SETTINGS = settings_classes()
SETTING_VARS = {f.metadata["env"]: cls for cls in SETTINGS for f, _ in cls.fields()}


# ------------------------------------------------------------------ commands and settings


@pytest.mark.parametrize("name", sorted(fleet_services()))
def test_every_fleet_command_parses_with_the_fleet_cli(name):
    argvs = fleet_argvs(fleet_services()[name])
    assert argvs, f"{name} runs no fleet command"
    for argv in argvs:
        try:
            build_parser().parse_args(argv)
        except SystemExit as exc:
            pytest.fail(f"{name}: `fleet {' '.join(argv)}` does not parse (exit {exc.code})")


def test_each_long_running_service_runs_its_verb():
    verbs = {name: fleet_argvs(svc)[-1][0] for name, svc in fleet_services().items()}
    assert verbs["bridge-1"] == verbs["bridge-2"] == "bridge"
    assert verbs["hot"] == "hot"
    assert verbs["cold"] == "cold"
    assert verbs["topics"] == "topics"
    assert verbs["query"] == "query"
    assert verbs["lake"] == "lake"


def test_settings_are_found():
    assert {"FLEET_KAFKA_BOOTSTRAP", "FLEET_BRIDGE_SHARE_GROUP", "FLEET_HOT_APP_ID", "FLEET_LAKE_DIR"} <= set(
        SETTING_VARS
    )


@pytest.mark.parametrize("doc", [DEFAULT, THREE], ids=["one-broker", "three-brokers"])
def test_every_fleet_variable_is_a_setting_and_its_value_passes_validation(doc):
    for name, svc in doc["services"].items():
        environ = {k: str(v) for k, v in (svc.get("environment") or {}).items()}
        if svc.get("image") == FLEET_IMAGE:
            assert all(k.startswith("FLEET_") for k in environ), name
        fleet_vars = {k for k in environ if k.startswith("FLEET_")}
        unknown = fleet_vars - set(SETTING_VARS)
        assert not unknown, f"{name}: no setting reads {sorted(unknown)}"
        for cls in {SETTING_VARS[var] for var in fleet_vars}:
            cls.from_env(environ)  # a ConfigError here is what the container would die of


def test_compose_sets_only_values_that_differ_from_the_defaults():
    # A value from a compose variable (e.g. the cluster's replication) may equal the default on
    # one broker and differ on three: only literal values are held to this.
    defaults = {f.metadata["env"]: f.default for cls in SETTINGS for f, _ in cls.fields()}
    for name, svc in DEFAULT["services"].items():
        raw = COMPOSE["services"][name].get("environment") or {}
        for var, value in (svc.get("environment") or {}).items():
            if var in defaults and "${" not in str(raw.get(var, "")):
                assert str(value) != str(defaults[var]), f"{name}: {var}={value} is the default already"


def test_the_fleet_services_share_one_image_built_from_infra_dockerfile():
    for name, svc in fleet_services().items():
        assert svc["build"] == {"context": ".", "dockerfile": "infra/Dockerfile"}, name


# ------------------------------------------------------------------ wiring


@pytest.mark.parametrize("profiles", [set(), {"three-brokers"}, {"three-brokers", "tools", "demo"}])
def test_depends_on_targets_exist_in_every_profile_combination(profiles):
    running = active(DEFAULT, profiles)
    for name, svc in running.items():
        for target, spec in (svc.get("depends_on") or {}).items():
            assert target in DEFAULT["services"], f"{name} depends on unknown {target}"
            assert spec["condition"] in (
                "service_started",
                "service_healthy",
                "service_completed_successfully",
            )
            if target not in running:
                assert spec.get("required") is False, f"{name} needs {target}, absent with {profiles or '-'}"
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in DEFAULT["services"][target], f"{target} has no healthcheck"


def test_the_pipeline_services_start_after_topic_provisioning():
    assert SERVICES["topics"]["restart"] == "no"
    for name in ("bridge-1", "bridge-2", "hot", "cold"):
        assert SERVICES[name]["depends_on"]["topics"]["condition"] == "service_completed_successfully", name


def test_topics_waits_for_every_kafka_node():
    nodes = {n for n, s in SERVICES.items() if s.get("image", "").startswith("apache/kafka:")}
    depends = SERVICES["topics"]["depends_on"]
    assert set(depends) >= nodes
    assert all(depends[n]["condition"] == "service_healthy" for n in nodes)


def test_volumes_are_declared_and_bind_mounts_exist():
    declared = set(COMPOSE["volumes"])
    used = set()
    for name, svc in SERVICES.items():
        for mount in svc.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).is_file(), f"{name}: {source} missing"
            else:
                assert source in declared, f"{name}: volume {source} not declared"
                used.add(source)
    assert used == declared, f"declared but unused: {declared - used}"


def test_the_lake_is_a_named_volume_at_the_lake_dir():
    for name in ("cold", "query", "lake"):
        svc = SERVICES[name]
        lake_dir = svc["environment"]["FLEET_LAKE_DIR"]
        mounts = [m.split(":") for m in svc["volumes"]]
        assert ["lake", lake_dir] in [m[:2] for m in mounts], name
    assert ["lake", SERVICES["query"]["environment"]["FLEET_LAKE_DIR"], "ro"] in [
        m.split(":") for m in SERVICES["query"]["volumes"]
    ]


def test_published_host_ports_do_not_collide():
    ports = [
        p.rsplit(":", 1)[0].split(":")[-1]
        for svc in active(DEFAULT, {"three-brokers", "tools", "demo"}).values()
        for p in svc.get("ports", [])
    ]
    assert len(ports) == len(set(ports)), ports


def test_long_running_services_restart_and_have_resource_limits():
    for name, svc in active(DEFAULT, {"three-brokers"}).items():
        if name in ("topics", "secure-init"):
            assert svc["restart"] == "no", name
            continue
        assert svc["restart"] == "unless-stopped", name
        limits = svc["deploy"]["resources"]["limits"]
        assert limits["cpus"] and limits["memory"], name


# ------------------------------------------------------------------ scaling


def test_two_bridges_split_one_shared_subscription_with_stable_sessions():
    bridges = {n: s for n, s in fleet_services().items() if fleet_argvs(s)[-1][:1] == ["bridge"]}
    assert len(bridges) == 2
    envs = [s["environment"] for s in bridges.values()]
    assert len({e["FLEET_BRIDGE_SHARE_GROUP"] for e in envs}) == 1 and envs[0]["FLEET_BRIDGE_SHARE_GROUP"]
    assert len({e["FLEET_BRIDGE_CLIENT_ID"] for e in envs}) == 2  # one persistent session each
    assert all(s.get("deploy", {}).get("replicas", 1) == 1 for s in bridges.values())


@pytest.mark.parametrize("name", ["hot", "cold"])
def test_two_consumers_per_group(name):
    assert SERVICES[name]["deploy"]["replicas"] == 2
    assert "container_name" not in SERVICES[name] and "ports" not in SERVICES[name]  # would clash


def test_replicas_do_not_exceed_the_partitions():
    partitions = yaml.safe_load((ROOT / "infra" / "topics.yaml").read_text())["defaults"]["partitions"]
    for name in ("hot", "cold"):
        assert SERVICES[name]["deploy"]["replicas"] <= partitions


# ------------------------------------------------------------------ Kafka


def kafka_nodes(doc: dict[str, Any], profiles: set[str]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in active(doc, profiles).items() if s.get("image", "").startswith("apache/kafka:")}


def test_kafka_runs_in_kraft_mode_without_auto_created_topics():
    for name, node in kafka_nodes(DEFAULT, {"three-brokers"}).items():
        env = node["environment"]
        assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}, name
        assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false", name  # no 4-partition surprises


@pytest.mark.parametrize(
    ("doc", "profiles", "nodes", "replication", "min_isr"),
    [(DEFAULT, set(), 1, 1, 1), (THREE, {"three-brokers"}, 3, 3, 2)],
    ids=["one-broker", "three-brokers"],
)
def test_the_cluster_agrees_on_quorum_and_replication(doc, profiles, nodes, replication, min_isr):
    running = kafka_nodes(doc, profiles)
    assert len(running) == nodes
    voters = {f"{n['environment']['KAFKA_NODE_ID']}@{n['hostname']}:9093" for n in running.values()}
    for name, node in running.items():
        env = node["environment"]
        assert set(env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")) == voters, name
        assert f"INTERNAL://{node['hostname']}:29092" in env["KAFKA_ADVERTISED_LISTENERS"], name
        assert node["hostname"] == name, name
        for var in (
            "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
            "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
            "KAFKA_DEFAULT_REPLICATION_FACTOR",
        ):
            assert int(env[var]) == replication, (name, var)
        assert (
            int(env["KAFKA_MIN_INSYNC_REPLICAS"])
            == int(env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"])
            == min_isr
        )
        assert env["CLUSTER_ID"] == running["kafka"]["environment"]["CLUSTER_ID"]
    assert len({n["environment"]["KAFKA_NODE_ID"] for n in running.values()}) == nodes
    # Topics and Faust's changelog get the cluster's replication; services bootstrap from every node.
    args = build_parser().parse_args(fleet_argvs(doc["services"]["topics"])[0])
    assert args.replication_factor == replication
    assert int(doc["services"]["hot"]["environment"]["FLEET_HOT_REPLICATION_FACTOR"]) == replication
    bootstrap = {f"{n['hostname']}:29092" for n in running.values()}
    for name, svc in fleet_services(doc).items():
        if "FLEET_KAFKA_BOOTSTRAP" in (svc.get("environment") or {}):
            assert set(svc["environment"]["FLEET_KAFKA_BOOTSTRAP"].split(",")) == bootstrap, name


def test_a_half_configured_three_broker_cluster_cannot_start_split():
    # --profile three-brokers without the variables: nodes 2 and 3 are controllers missing from
    # the voters, which Kafka refuses at start-up, so no second quorum can form.
    for name, node in kafka_nodes(DEFAULT, {"three-brokers"}).items():
        env = node["environment"]
        ids = {v.split("@")[0] for v in env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")}
        assert (env["KAFKA_NODE_ID"] in ids) == (name == "kafka"), name


def test_the_hot_workers_changelog_gets_the_configured_replication():
    from services.common.settings import KafkaSettings
    from services.hot.app import build_app
    from services.hot.settings import HotSettings

    app = build_app(HotSettings.from_env({"FLEET_HOT_REPLICATION_FACTOR": "3"}), KafkaSettings.from_env({}))
    assert app.conf.topic_replication_factor == 3
    assert app.tables["rule-state"].changelog_topic.replicas is None  # so the app's setting applies


# ------------------------------------------------------------------ Mosquitto (secure profile)


def conf_directives(path: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            key, _, value = line.partition(" ")
            out.setdefault(key, []).append(value.strip())
    return out


SECURE_CONF = ROOT / "infra" / "mosquitto" / "compose-secure.conf"
SECURE = conf_directives(SECURE_CONF)


def mount_point(service: str, source: str) -> str:
    return next(m.split(":")[1] for m in SERVICES[service]["volumes"] if m.split(":")[0] == source)


def test_mosquitto_runs_the_compose_secure_conf():
    mounts = {m.split(":")[0]: m.split(":")[1] for m in SERVICES["mosquitto"]["volumes"]}
    assert mounts["./infra/mosquitto/compose-secure.conf"] == "/mosquitto/config/mosquitto.conf"
    assert not [v for values in SECURE.values() for v in values if "${" in v]  # no launcher placeholders
    assert SECURE["allow_anonymous"] == ["false"]
    assert SECURE["acl_file"] == [mounts["./infra/mosquitto/acl"]]
    assert SECURE["persistence_location"] == [mounts["mosquitto-data"] + "/"]


def test_secure_init_writes_where_mosquitto_and_the_bridges_read():
    written = mount_point("secure-init", "fleet-secure")
    (init,) = [a for a in fleet_argvs(SERVICES["secure-init"]) if a[:2] == ["secure", "init"]]
    # where cmd_init writes: <dir>/secure/
    assert StackSettings.from_args(build_parser().parse_args(init), {}).dir == Path(written)
    at_mosquitto = mount_point("mosquitto", "fleet-secure")
    assert SECURE["password_file"] == [f"{at_mosquitto}/secure/{PASSWORD_FILE}"]
    for key in ("cafile", "certfile", "keyfile"):
        assert SECURE[key][0].startswith(f"{at_mosquitto}/certs/"), key
    for name in ("bridge-1", "bridge-2"):
        at_bridge = mount_point(name, "fleet-secure")
        assert f". {at_bridge}/secure/{BRIDGE_FILE}" in SERVICES[name]["command"][0], name
        assert SERVICES[name]["volumes"] == [f"fleet-secure:{at_bridge}:ro"]
    simulator = build_parser().parse_args(fleet_argvs(SERVICES["simulator"])[0])
    assert simulator.credentials == f"{mount_point('simulator', 'fleet-secure')}/secure/{CARS_FILE}"
    # Each file goes to its reader: Mosquitto (uid 1883) the password file, the image's user the rest.
    script = SERVICES["secure-init"]["command"][0]
    assert f"chown 1883:1883 {written}/secure/{PASSWORD_FILE}" in script
    assert f"{written}/secure/{BRIDGE_FILE}" in script.split("chown fleet:fleet", 1)[1]


def test_secure_init_keeps_existing_credentials():
    # `fleet secure init` refuses to overwrite (exit 2), which would fail every later `up`.
    script = SERVICES["secure-init"]["command"][0]
    assert "if [ ! -f /fleet/secure/passwd ]; then fleet secure init" in script


def test_compose_secure_conf_keeps_dev_conf_no_loss_settings():
    dev = conf_directives(ROOT / "infra" / "mosquitto" / "dev.conf")
    for key, values in dev.items():
        if key == "allow_anonymous":
            continue
        assert SECURE.get(key) == values, key


def test_the_tls_listener_pins_client_ids_to_user_names():
    text = SECURE_CONF.read_text()
    tls = text[text.index("listener 8883") :]
    assert "use_username_as_clientid true" in tls
    assert "use_username_as_clientid" not in text[: text.index("listener 8883")]
    published = [p.split(":")[-1] for p in SERVICES["mosquitto"]["ports"]]
    assert set(published) == {"8883", "1883"}


# ------------------------------------------------------------------ healthchecks


class _Metrics(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/metrics" else 404)
        self.end_headers()
        self.wfile.write(b"up 1\n")

    def log_message(self, *args):
        pass


@pytest.fixture
def metrics_server() -> Iterator[int]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Metrics)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("name", "port_var"),
    [
        ("bridge-1", "FLEET_BRIDGE_METRICS_PORT"),
        ("hot", "FLEET_HOT_METRICS_PORT"),
        ("cold", "FLEET_COLD_METRICS_PORT"),
    ],
)
def test_healthchecks_probe_the_metrics_endpoint(name, port_var, metrics_server):
    test = SERVICES[name]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    assert "metrics_port" in test[3]  # the port comes from the service's settings, not a copy
    environ = {**os.environ, **DEFAULT["services"][name]["environment"], "PYTHONPATH": str(ROOT)}
    ok = subprocess.run(
        [sys.executable, "-c", test[3]], env={**environ, port_var: str(metrics_server)}, timeout=30
    )
    assert ok.returncode == 0
    bad = subprocess.run(
        [sys.executable, "-c", test[3]],
        env={**environ, port_var: str(closed_port())},
        timeout=30,
        capture_output=True,
    )
    assert bad.returncode != 0


def closed_port() -> int:
    """A port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------ the image


def test_dockerfile_copies_every_package_and_the_infra_data():
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"][
        "include"
    ]
    copied = {
        ln.split()[1] for ln in DOCKERFILE.splitlines() if ln.startswith("COPY ") and "--from" not in ln
    }
    for pattern in include:
        package = pattern.rstrip("*").rstrip(".")
        assert package in copied, package
        assert (ROOT / package / "__init__.py").is_file(), package
    assert "infra" in copied  # topics.yaml, rules.yaml: read from the source tree


def test_dockerfile_is_multi_stage_non_root_and_without_dev_dependencies():
    stages = [ln for ln in DOCKERFILE.splitlines() if ln.startswith("FROM ")]
    assert len(stages) >= 2
    users = [ln.split()[1] for ln in DOCKERFILE.splitlines() if ln.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert "[dev]" not in DOCKERFILE and "optional-dependencies" not in DOCKERFILE
    # Dependencies are installed before the source is copied: a code edit keeps that layer.
    lines = DOCKERFILE.splitlines()
    install = next(i for i, ln in enumerate(lines) if "pip install" in ln)
    first_source = next(i for i, ln in enumerate(lines) if ln.startswith("COPY services"))
    assert install < first_source
    assert dockerfile_entrypoint() == ["fleet"]
