"""Factories for paho-mqtt 2.x clients.

Every MQTT client of the project (bridge, simulator, tests) is built here from
`MqttSettings`: callback API v2, credentials, TLS, and the session flavour asked for.
"""

from __future__ import annotations

import ssl
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from services.common.errors import ConfigError
from services.common.settings import MqttSettings

# A persistent session outlives a disconnect by this long (MQTT v5 Session Expiry Interval).
PERSISTENT_SESSION_EXPIRY_S = 7 * 24 * 3600


def make_client(
    settings: MqttSettings,
    client_id: str,
    *,
    persistent: bool = False,
    v5: bool = True,
    manual_ack: bool = False,
) -> mqtt.Client:
    """A paho client (not connected) configured from settings.

    `persistent=True` asks the broker to keep the session (subscriptions and queued QoS1
    messages) across disconnects: clean_start=False with a session expiry on v5,
    clean_session=False on v3.1.1. Pass the result of `connect_properties()` to `connect`.
    """
    if persistent and not client_id:
        raise ConfigError("a persistent MQTT session needs a stable client id")
    protocol = mqtt.MQTTv5 if v5 else mqtt.MQTTv311
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=protocol,
        clean_session=None if v5 else not persistent,
        manual_ack=manual_ack,
    )
    if settings.username:
        client.username_pw_set(settings.username, settings.password or None)
    if settings.tls_ca:
        try:
            client.tls_set(
                ca_certs=settings.tls_ca,
                certfile=settings.tls_cert or None,
                keyfile=settings.tls_key or None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"FLEET_MQTT_TLS_*: cannot load TLS files: {exc}") from None
    return client


def connect_properties(persistent: bool) -> Properties | None:
    """CONNECT properties for a v5 session: an expiry keeps it alive while we are away."""
    if not persistent:
        return None
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = PERSISTENT_SESSION_EXPIRY_S
    return props


def connect(client: mqtt.Client, settings: MqttSettings, *, persistent: bool = False) -> None:
    """Blocking connect with the session flavour `make_client` was built for."""
    if client.protocol == mqtt.MQTTv5:
        client.connect(
            settings.host,
            settings.port,
            keepalive=settings.keepalive,
            clean_start=not persistent,
            properties=connect_properties(persistent),
        )
    else:
        client.connect(settings.host, settings.port, keepalive=settings.keepalive)


def forget_session(settings: MqttSettings, client_id: str, within_s: float = 10.0) -> None:
    """Remove a persistent session and its queue: a clean-session connect under its id replaces it."""
    connected = threading.Event()
    client = make_client(settings, client_id, v5=False)
    client.on_connect = lambda *_: connected.set()
    connect(client, settings)
    client.loop_start()
    connected.wait(within_s)
    client.disconnect()
    client.loop_stop()
