"""Secure profile: the password file Mosquitto reads, the credentials files, the configs that use them."""

import base64
import json
import shutil
import stat
import subprocess
import time

import pytest

from services.common.errors import ConfigError
from services.common.settings import INFRA_DIR
from services.stack.launcher import render_mosquitto_conf
from services.stack.secure import (
    BRIDGE_USER,
    CERT_FILES,
    check_password,
    hash_password,
    make_credentials,
    password_file_text,
    write_credentials,
    write_dev_certs,
)
from services.stack.settings import StackSettings
from simulators.fleet import vin_for

MOSQUITTO_DIR = INFRA_DIR / "mosquitto"


def mosquitto_passwd_line(tmp_path, user, password):
    """What Mosquitto's own tool writes for one user."""
    binary = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    path = tmp_path / "passwd"
    subprocess.run([binary, "-c", "-b", str(path), user, password], check=True, capture_output=True)
    return path.read_text().strip()


def test_hash_is_what_mosquitto_passwd_writes_for_the_same_salt(tmp_path):
    user, theirs = mosquitto_passwd_line(tmp_path, "car", "s3cret-pw").split(":", 1)
    _, seven, iterations, salt, _digest = theirs.split("$")
    assert (seven, iterations) == ("7", "101")  # Mosquitto 2's PBKDF2-SHA512, its default rounds
    assert hash_password("s3cret-pw", salt=base64.b64decode(salt)) == theirs
    assert check_password(theirs, "s3cret-pw")
    assert not check_password(theirs, "s3cret-pW")


def test_our_hash_has_mosquitto_passwd_shape():
    hashed = hash_password("pw")
    _, seven, iterations, salt, digest = hashed.split("$")
    assert (seven, iterations) == ("7", "101")
    assert len(base64.b64decode(salt)) == 12
    assert len(base64.b64decode(digest)) == 64
    assert hash_password("pw") != hashed  # a fresh salt every time
    assert check_password(hashed, "pw")


def test_a_hash_of_another_format_is_a_config_error():
    with pytest.raises(ConfigError, match=r"not a Mosquitto \$7\$ password hash"):
        check_password("$6$abc$def", "pw")


def test_credentials_are_one_random_password_per_vin_and_the_bridge():
    creds = make_credentials(5)
    assert list(creds.cars) == [vin_for(i) for i in range(5)]
    passwords = [*creds.cars.values(), creds.bridge_password]
    assert len(set(passwords)) == 6
    assert all(len(p) == 32 and p.replace("-", "").replace("_", "").isalnum() for p in passwords)
    assert list(creds.users()) == [BRIDGE_USER, *creds.cars]


def test_zero_cars_is_a_config_error():
    with pytest.raises(ConfigError, match="--cars=0: expected >= 1"):
        make_credentials(0)


def test_password_file_has_one_verifiable_line_per_user():
    creds = make_credentials(3)
    lines = password_file_text(creds).splitlines()
    assert len(lines) == 4
    for line, (user, password) in zip(lines, creds.users().items(), strict=True):
        name, hashed = line.split(":", 1)
        assert name == user
        assert check_password(hashed, password)


def test_thousands_of_cars_take_about_a_second_at_most():
    t0 = time.monotonic()
    text = password_file_text(make_credentials(2000))
    assert time.monotonic() - t0 < 3.0  # ~0.15 s here; mosquitto_passwd would start 2,000 processes
    assert text.count("\n") == 2001


def test_written_files_are_private_and_never_silently_replaced(tmp_path):
    creds = make_credentials(2)
    files = write_credentials(tmp_path / "secure", creds)
    assert stat.S_IMODE((tmp_path / "secure").stat().st_mode) == 0o700
    for path in (files.password_file, files.cars_file, files.bridge_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert json.loads(files.cars_file.read_text()) == creds.cars
    env = dict(line.split("=", 1) for line in files.bridge_file.read_text().splitlines() if "=" in line)
    assert env == {"FLEET_MQTT_USERNAME": BRIDGE_USER, "FLEET_MQTT_PASSWORD": creds.bridge_password}

    with pytest.raises(ConfigError, match="exists: --force replaces every password"):
        write_credentials(tmp_path / "secure", make_credentials(2))
    assert json.loads(files.cars_file.read_text()) == creds.cars
    newer = make_credentials(3)
    write_credentials(tmp_path / "secure", newer, force=True)
    assert json.loads(files.cars_file.read_text()) == newer.cars
    assert [p.name for p in (tmp_path / "secure").iterdir() if p.name.startswith(".")] == []


def test_dev_certs_chain_to_their_ca_and_are_kept_once_made(tmp_path):
    certs = tmp_path / "certs"
    assert write_dev_certs(certs)
    assert sorted(p.name for p in certs.iterdir()) == sorted(CERT_FILES)
    assert all(stat.S_IMODE((certs / n).stat().st_mode) == 0o600 for n in CERT_FILES if n.endswith(".key"))
    verify = subprocess.run(
        ["openssl", "verify", "-CAfile", "ca.crt", "server.crt", "client.crt"],
        cwd=certs,
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stderr
    sans = subprocess.run(
        ["openssl", "x509", "-in", "server.crt", "-noout", "-ext", "subjectAltName"],
        cwd=certs,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "IP Address:127.0.0.1" in sans and "DNS:localhost" in sans

    before = (certs / "ca.crt").read_bytes()
    assert not write_dev_certs(certs)  # idempotent: `make certs` twice keeps the CA
    assert (certs / "ca.crt").read_bytes() == before


def directives(path):
    """(name, value) of every setting line, in order."""
    lines = path.read_text().splitlines()
    return [tuple(line.split(None, 1)) for line in lines if line.strip() and not line.startswith("#")]


SECURITY = [
    ("allow_anonymous", "false"),
    ("password_file", "${STACK_DIR}/secure/passwd"),
    ("acl_file", "${CONF_DIR}/acl"),
]


def test_secure_conf_is_dev_conf_with_logins_required():
    dev = [d for d in directives(MOSQUITTO_DIR / "dev.conf") if d[0] != "allow_anonymous"]
    assert directives(MOSQUITTO_DIR / "secure.conf") == SECURITY + dev


def test_secure_tls_conf_is_secure_conf_plus_a_tls_listener_for_the_cars():
    secure = directives(MOSQUITTO_DIR / "secure.conf")
    tls = directives(MOSQUITTO_DIR / "secure-tls.conf")
    assert tls[: len(secure)] == secure
    extra = dict(tls[len(secure) :])
    assert tls[len(secure)] == ("listener", "${MQTT_TLS_PORT} ${STACK_HOST}")
    assert extra["certfile"] == "${STACK_DIR}/certs/server.crt"
    assert extra["use_username_as_clientid"] == "true"


def test_acl_gives_the_bridge_read_and_each_car_its_own_vin():
    acl = directives(MOSQUITTO_DIR / "acl")
    assert acl == [
        ("user", BRIDGE_USER),
        ("topic", "read fleet/#"),
        ("topic", f"deny fleet/{BRIDGE_USER}/#"),
        ("pattern", "write fleet/%u/#"),
    ]


def test_launcher_fills_in_absolute_paths_for_the_secure_profile(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = StackSettings(
        dir=tmp_path / "stack", mqtt_tls_port=18883, mosquitto_conf=MOSQUITTO_DIR / "secure-tls.conf"
    )
    text = render_mosquitto_conf(settings, settings.mosquitto_conf.read_text())
    lines = text.splitlines()
    assert f"password_file {tmp_path}/stack/secure/passwd" in lines
    assert f"acl_file {MOSQUITTO_DIR}/acl" in lines
    assert f"cafile {tmp_path}/stack/certs/ca.crt" in lines
    assert "listener 18883 127.0.0.1" in lines
    assert any("${STACK_DIR}" in line for line in lines if line.startswith("#"))  # comments untouched


def test_unknown_placeholder_is_one_line_naming_the_file(tmp_path):
    settings = StackSettings(dir=tmp_path, mosquitto_conf=tmp_path / "my.conf")
    with pytest.raises(ConfigError) as info:
        render_mosquitto_conf(settings, "# ${ANYTHING} in a comment is fine\npassword_file ${SECRETS}/pw\n")
    assert str(info.value).startswith(f"{tmp_path}/my.conf: unknown ${{SECRETS}} (known: ${{STACK_DIR}}")


def test_tls_port_is_a_setting():
    assert StackSettings.from_env({"FLEET_STACK_MQTT_TLS_PORT": "18883"}).mqtt_tls_port == 18883
    with pytest.raises(ConfigError, match="FLEET_STACK_MQTT_TLS_PORT=0: expected 1..65535"):
        StackSettings.from_env({"FLEET_STACK_MQTT_TLS_PORT": "0"})
