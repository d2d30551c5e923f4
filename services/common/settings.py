"""Settings: frozen dataclasses filled from `FLEET_*` environment variables.

This module is the only place that reads the process environment. Each field names its
variable and default in its metadata, so `--help`, the README table and the parser all come
from the same declaration:

    @dataclass(frozen=True)
    class KafkaSettings(Settings):
        bootstrap: str = env("FLEET_KAFKA_BOOTSTRAP", "127.0.0.1:9092", "Kafka bootstrap servers")

CLI flags override the environment (`add_arguments` / `from_args`); a value that does not
parse is a `ConfigError` naming the variable, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Self, TypeVar, get_type_hints

from services.common.errors import ConfigError

T = TypeVar("T")

PROJECT_ROOT = Path(__file__).resolve().parents[2]
INFRA_DIR = PROJECT_ROOT / "infra"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env(var: str, default: T, help: str, *, choices: tuple[str, ...] | None = None) -> T:
    """Declare a settings field read from `var`, with a default and a one-line meaning."""
    meta = {"env": var, "help": help, "choices": choices}
    return dataclasses.field(default=default, metadata=meta)


def _parse(raw: str, typ: Any, where: str) -> Any:
    if typ is str:
        return raw
    if typ is bool:
        low = raw.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ConfigError(f"{where}={raw!r}: expected true or false")
    if typ is int:
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{where}={raw!r}: expected an integer") from None
    if typ is float:
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(f"{where}={raw!r}: expected a number") from None
    if typ is Path:
        return Path(raw)
    raise TypeError(f"unsupported settings type {typ!r} for {where}")


class Settings:
    """Mixin giving a frozen dataclass `from_env`, `from_args` and `add_arguments`."""

    @classmethod
    def fields(cls) -> Iterator[tuple[dataclasses.Field[Any], Any]]:
        """Each declared field with its resolved type."""
        hints = get_type_hints(cls)
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if "env" in f.metadata:
                yield f, hints[f.name]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Self:
        """Build from the environment (the process's unless `environ` is given), then overrides."""
        source = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f, typ in cls.fields():
            var = f.metadata["env"]
            if f.name in overrides and overrides[f.name] is not None:
                value = overrides[f.name]
                where = f"--{f.name.replace('_', '-')}"
                if isinstance(value, str) and typ is not str:
                    value = _parse(value, typ, where)
            elif var in source:
                value = _parse(source[var], typ, var)
                where = var
            else:
                continue
            choices = f.metadata.get("choices")
            if choices and value not in choices:
                raise ConfigError(f"{where}={value!r}: expected one of {', '.join(choices)}")
            values[f.name] = value
        try:
            instance = cls(**values)
        except (TypeError, ValueError) as exc:
            raise ConfigError(str(exc)) from None
        check = getattr(instance, "validate", None)
        if check is not None:
            check()
        return instance

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser, *, only: set[str] | None = None) -> None:
        """Add one `--flag` per field; help shows the env variable and the default."""
        for f, typ in cls.fields():
            if only is not None and f.name not in only:
                continue
            flag = "--" + f.name.replace("_", "-")
            text = f"{f.metadata['help']} [env {f.metadata['env']}, default {f.default!r}]"
            kwargs: dict[str, Any] = {"dest": f.name, "default": None, "help": text}
            if f.metadata.get("choices"):
                kwargs["choices"] = f.metadata["choices"]
            if typ is bool:
                kwargs["action"] = argparse.BooleanOptionalAction
            else:
                kwargs["metavar"] = f.metadata["env"].removeprefix("FLEET_")
            parser.add_argument(flag, **kwargs)

    @classmethod
    def from_args(cls, args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Self:
        """Environment first, then every flag the user actually gave."""
        given = {f.name: getattr(args, f.name, None) for f, _ in cls.fields()}
        return cls.from_env(environ, **given)

    @classmethod
    def describe(cls) -> list[tuple[str, str, str]]:
        """(env var, default, meaning) rows for the README settings table."""
        return [(f.metadata["env"], repr(f.default), f.metadata["help"]) for f, _ in cls.fields()]


def child_environ(extra: Mapping[str, str] | None = None, *, drop: tuple[str, ...] = ()) -> dict[str, str]:
    """The environment for a child process: ours, minus `drop`, plus `extra`."""
    environ = {k: v for k, v in os.environ.items() if k not in drop}
    environ.update(extra or {})
    return environ


@dataclasses.dataclass(frozen=True)
class KafkaSettings(Settings):
    """How every service reaches Kafka (any Kafka-protocol broker: Tansu or Apache Kafka)."""

    bootstrap: str = env("FLEET_KAFKA_BOOTSTRAP", "127.0.0.1:9092", "Kafka bootstrap servers")
    client_id: str = env("FLEET_KAFKA_CLIENT_ID", "fleet", "Kafka client id prefix")
    security_protocol: str = env(
        "FLEET_KAFKA_SECURITY_PROTOCOL",
        "PLAINTEXT",
        "Kafka security protocol",
        choices=("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"),
    )
    sasl_mechanism: str = env(
        "FLEET_KAFKA_SASL_MECHANISM",
        "PLAIN",
        "SASL mechanism",
        choices=("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"),
    )
    sasl_username: str = env("FLEET_KAFKA_SASL_USERNAME", "", "SASL user name")
    sasl_password: str = env("FLEET_KAFKA_SASL_PASSWORD", "", "SASL password")
    ssl_cafile: str = env("FLEET_KAFKA_SSL_CAFILE", "", "CA bundle to verify the brokers (SSL)")
    ssl_certfile: str = env("FLEET_KAFKA_SSL_CERTFILE", "", "client certificate (mutual TLS)")
    ssl_keyfile: str = env("FLEET_KAFKA_SSL_KEYFILE", "", "client private key (mutual TLS)")
    idempotence: str = env(
        "FLEET_KAFKA_IDEMPOTENCE",
        "auto",
        "idempotent producer: auto falls back to plain acks=all when the broker refuses it",
        choices=("auto", "on", "off"),
    )
    request_timeout_ms: int = env("FLEET_KAFKA_REQUEST_TIMEOUT_MS", 30_000, "Kafka request timeout (ms)")

    def validate(self) -> None:
        """Reject settings that cannot work, with the variable to fix."""
        if not self.bootstrap.strip():
            raise ConfigError("FLEET_KAFKA_BOOTSTRAP is empty: expected host:port[,host:port]")
        for server in self.bootstrap.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ConfigError(f"FLEET_KAFKA_BOOTSTRAP={self.bootstrap!r}: expected host:port[,host:port]")
        if self.security_protocol.startswith("SASL") and not self.sasl_username:
            raise ConfigError(
                f"FLEET_KAFKA_SECURITY_PROTOCOL={self.security_protocol} needs "
                "FLEET_KAFKA_SASL_USERNAME and FLEET_KAFKA_SASL_PASSWORD"
            )


@dataclasses.dataclass(frozen=True)
class MqttSettings(Settings):
    """How every service and the simulator reach the MQTT broker."""

    host: str = env("FLEET_MQTT_HOST", "127.0.0.1", "MQTT broker host")
    port: int = env("FLEET_MQTT_PORT", 1883, "MQTT broker port")
    username: str = env("FLEET_MQTT_USERNAME", "", "MQTT user name (secure profile)")
    password: str = env("FLEET_MQTT_PASSWORD", "", "MQTT password (secure profile)")
    tls_ca: str = env("FLEET_MQTT_TLS_CA", "", "CA certificate; setting it turns TLS on")
    tls_cert: str = env("FLEET_MQTT_TLS_CERT", "", "client certificate (mutual TLS)")
    tls_key: str = env("FLEET_MQTT_TLS_KEY", "", "client private key (mutual TLS)")
    keepalive: int = env("FLEET_MQTT_KEEPALIVE", 30, "MQTT keepalive (s)")

    def validate(self) -> None:
        """Reject a port outside 1..65535."""
        if not 0 < self.port < 65536:
            raise ConfigError(f"FLEET_MQTT_PORT={self.port}: expected 1..65535")


@dataclasses.dataclass(frozen=True)
class LogSettings(Settings):
    """Logging for every service."""

    level: str = env(
        "FLEET_LOG_LEVEL",
        "INFO",
        "log level",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
    )


@dataclasses.dataclass(frozen=True)
class LakeSettings(Settings):
    """Where the Parquet lake lives: written by `fleet cold`, read by `fleet query` and `fleet lake`."""

    dir: Path = env("FLEET_LAKE_DIR", Path(".fleet/lake"), "root of the Parquet lake")
