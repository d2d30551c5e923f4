"""Credentials and dev certificates for Mosquitto's secure profile (infra/mosquitto/secure*.conf).

    creds = make_credentials(cars=100)          # one random password per VIN + the bridge's
    files = write_credentials(dir, creds)       # passwd (Mosquitto), cars.json, bridge.env; mode 0600
    write_dev_certs(dir)                        # ca/server/client certificates with openssl

The password file is written here rather than with `mosquitto_passwd`, which hashes one user
per process start: thousands of cars take under a second this way. The format is Mosquitto
2's `$7$` (PBKDF2-SHA512), checked against `mosquitto_passwd` in the unit tests.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

from services.common.errors import ConfigError, StackError
from simulators.fleet import vin_for

# The user every bridge instance logs in as; infra/mosquitto/acl grants it read on fleet/#.
BRIDGE_USER = "fleet-bridge"

# mosquitto_passwd 2.0's defaults. The iteration count is low, but the passwords are 192-bit
# random tokens, so guessing stays hopeless while a broker checking thousands of reconnecting
# cars at once spends little CPU.
PBKDF2_ITERATIONS = 101
SALT_BYTES = 12
_HASH_BYTES = 64

PASSWORD_FILE = "passwd"
CARS_FILE = "cars.json"
BRIDGE_FILE = "bridge.env"

CERT_FILES = ("ca.crt", "ca.key", "server.crt", "server.key", "client.crt", "client.key")
CERT_DAYS = 825  # the longest server-certificate lifetime some TLS clients accept


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS) -> str:
    """Mosquitto 2's `$7$<iterations>$<salt b64>$<PBKDF2-SHA512 b64>` hash of a password."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, _HASH_BYTES)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def check_password(hashed: str, password: str) -> bool:
    """True when `password` matches a `$7$` hash (as Mosquitto would decide)."""
    parts = hashed.split("$")
    try:
        if len(parts) != 5 or parts[:2] != ["", "7"] or not parts[2].isdigit():
            raise ValueError
        salt, expected = base64.b64decode(parts[3], validate=True), base64.b64decode(parts[4], validate=True)
    except ValueError:  # binascii.Error is one
        raise ConfigError(f"not a Mosquitto $7$ password hash: {hashed[:12]!r}...") from None
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, int(parts[2]), len(expected))
    return hmac.compare_digest(digest, expected)


def new_password() -> str:
    """A random password: 32 URL-safe characters, nothing a shell or JSON must escape."""
    return secrets.token_urlsafe(24)


@dataclasses.dataclass(frozen=True)
class Credentials:
    """Clear-text logins of the secure profile: one per car (user = VIN) and the bridge's."""

    cars: dict[str, str]
    bridge_password: str

    def users(self) -> dict[str, str]:
        """Every user name with its password, the bridge first."""
        return {BRIDGE_USER: self.bridge_password, **self.cars}


def make_credentials(cars: int) -> Credentials:
    """Random passwords for `cars` cars (VINs of `simulators.fleet.vin_for`) and the bridge."""
    if cars < 1:
        raise ConfigError(f"--cars={cars}: expected >= 1")
    return Credentials({vin_for(i): new_password() for i in range(cars)}, new_password())


def password_file_text(creds: Credentials) -> str:
    """The Mosquitto password file: one `user:$7$...` line per user."""
    return "".join(f"{user}:{hash_password(password)}\n" for user, password in creds.users().items())


@dataclasses.dataclass(frozen=True)
class SecureFiles:
    """Where `write_credentials` put the profile's files."""

    password_file: Path
    cars_file: Path
    bridge_file: Path


def secure_files(directory: Path) -> SecureFiles:
    """The file names inside a credentials folder (infra/mosquitto/secure.conf names passwd)."""
    return SecureFiles(directory / PASSWORD_FILE, directory / CARS_FILE, directory / BRIDGE_FILE)


def _write_secret(path: Path, text: str) -> None:
    # Created 0600 from the start (never readable by others, not even briefly), then renamed
    # into place so a reader never sees half a file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_credentials(directory: Path, creds: Credentials, *, force: bool = False) -> SecureFiles:
    """Write passwd, cars.json and bridge.env (mode 0600) into `directory` (made 0700)."""
    files = secure_files(directory)
    existing = [p for p in dataclasses.astuple(files) if p.exists()]
    if existing and not force:
        raise ConfigError(
            f"{existing[0]} exists: --force replaces every password (cars and bridge need the new ones)"
        )
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    _write_secret(files.password_file, password_file_text(creds))
    _write_secret(files.cars_file, json.dumps(creds.cars, indent=0) + "\n")
    _write_secret(
        files.bridge_file,
        "# the bridge's MQTT login (secure profile): set -a; . ./bridge.env; set +a\n"
        f"FLEET_MQTT_USERNAME={BRIDGE_USER}\nFLEET_MQTT_PASSWORD={creds.bridge_password}\n",
    )
    return files


# Extensions of the dev certificates. The server is reached as 127.0.0.1 or localhost, so both
# are subjectAltNames (TLS clients check the SAN, not the CN); key identifiers keep strict
# verifiers (Python's VERIFY_X509_STRICT) happy.
_OPENSSL_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = fleet-pipeline
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


def write_dev_certs(directory: Path, *, openssl: str = "openssl") -> bool:
    """A dev CA, a server cert (127.0.0.1, localhost) and a client cert; False when all exist."""
    if all((directory / name).exists() for name in CERT_FILES):
        return False
    binary = shutil.which(openssl)
    if binary is None:
        raise StackError(f"{openssl} not found: install it ('sudo apt-get install openssl')")
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Built in a scratch folder and moved in at the end: an interrupted run leaves no mix of
    # old and new files (a server cert from another CA would fail every handshake).
    with tempfile.TemporaryDirectory(dir=directory, prefix=".certs-") as scratch:
        work = Path(scratch)
        cnf = work / "openssl.cnf"
        cnf.write_text(_OPENSSL_CNF)

        def run(command: str, *extra: str) -> None:
            argv = [binary, *command.split(), *extra]
            done = subprocess.run(argv, cwd=work, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or ["no output"])[-1]
                raise StackError(f"openssl {command.split()[0]} failed: {last}")

        new_key = "genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out"
        valid = f"-days {CERT_DAYS}"
        run(f"{new_key} ca.key")
        ca_subject = "/CN=fleet-pipeline dev CA"
        run(
            f"req -new -x509 -config openssl.cnf -extensions ca -key ca.key {valid} -out ca.crt",
            "-subj",
            ca_subject,
        )
        for role, subject in (("server", "/CN=localhost"), ("client", "/CN=fleet-client")):
            run(f"{new_key} {role}.key")
            run(f"req -new -config openssl.cnf -key {role}.key -out {role}.csr", "-subj", subject)
            serial = secrets.randbits(63)  # random, so re-made certificates never share a serial
            sign = f"x509 -req -in {role}.csr -CA ca.crt -CAkey ca.key -set_serial {serial} {valid}"
            run(f"{sign} -extfile openssl.cnf -extensions {role} -out {role}.crt")
        for name in CERT_FILES:
            (work / name).chmod(0o600 if name.endswith(".key") else 0o644)
            os.replace(work / name, directory / name)
    return True
