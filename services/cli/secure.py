"""`fleet secure init | certs`: credentials and dev TLS certificates for the secure MQTT profile."""

from __future__ import annotations

import argparse
from typing import Any

from services.stack.secure import BRIDGE_USER, make_credentials, write_credentials, write_dev_certs
from services.stack.settings import StackSettings
from simulators.simulation import SimulatorSettings


def register(verbs: Any) -> None:
    """Add `fleet secure ...`."""
    parser = verbs.add_parser(
        "secure", help="credentials and dev certificates for infra/mosquitto/secure.conf"
    )
    sub = parser.add_subparsers(dest="action", metavar="<action>", required=True)

    what = "random passwords for N cars (user = VIN) and the bridge, in <dir>/secure/"
    init = sub.add_parser("init", help=what, description=f"{what}: passwd, cars.json, bridge.env (mode 0600)")
    SimulatorSettings.add_arguments(init, only={"cars"})
    StackSettings.add_arguments(init, only={"dir"})
    init.add_argument(
        "--force", action="store_true", help="replace existing credentials (all passwords change)"
    )
    init.set_defaults(func=cmd_init)

    what = "a dev CA, a server (127.0.0.1, localhost) and a client certificate in <dir>/certs/ (openssl)"
    certs = sub.add_parser("certs", help=what, description=f"{what}; kept when they exist")
    StackSettings.add_arguments(certs, only={"dir"})
    certs.set_defaults(func=cmd_certs)


def cmd_init(args: argparse.Namespace) -> int:
    """Write the password file, the cars' and the bridge's credentials."""
    cars = SimulatorSettings.from_args(args).cars
    directory = StackSettings.from_args(args).dir / "secure"
    files = write_credentials(directory, make_credentials(cars), force=args.force)
    print(f"{files.password_file}: {cars} cars + {BRIDGE_USER} (Mosquitto password file)")
    print(f"{files.cars_file}: fleet simulate --credentials {files.cars_file}")
    print(f"{files.bridge_file}: the bridge's FLEET_MQTT_USERNAME / FLEET_MQTT_PASSWORD")
    print("start the broker with FLEET_MOSQUITTO_CONF=infra/mosquitto/secure.conf fleet up")
    return 0


def cmd_certs(args: argparse.Namespace) -> int:
    """Make the dev certificates unless they exist."""
    directory = StackSettings.from_args(args).dir / "certs"
    if write_dev_certs(directory):
        print(f"{directory}: ca.crt, server.crt/.key (127.0.0.1, localhost), client.crt/.key")
    else:
        print(f"{directory}: certificates exist, kept (delete the folder to make new ones)")
    return 0
