"""`fleet secure init | certs`: files where secure.conf looks, one-line refusals."""

import json

from services.stack.secure import BRIDGE_USER
from simulators.fleet import vin_for
from tests.helpers import run_fleet


def test_init_writes_the_profile_files_under_the_stack_dir(tmp_path):
    result = run_fleet(["secure", "init", "--cars", "4", "--dir", str(tmp_path)])
    assert result.returncode == 0, result.stderr
    secure = tmp_path / "secure"
    assert sorted(p.name for p in secure.iterdir()) == ["bridge.env", "cars.json", "passwd"]
    assert list(json.loads((secure / "cars.json").read_text())) == [vin_for(i) for i in range(4)]
    users = [line.split(":", 1)[0] for line in (secure / "passwd").read_text().splitlines()]
    assert users == [BRIDGE_USER, *(vin_for(i) for i in range(4))]
    assert f"--credentials {secure / 'cars.json'}" in result.stdout


def test_init_refuses_to_replace_credentials_without_force(tmp_path):
    assert run_fleet(["secure", "init", "--cars", "1", "--dir", str(tmp_path)]).returncode == 0
    again = run_fleet(["secure", "init", "--cars", "1", "--dir", str(tmp_path)])
    assert again.returncode == 2
    assert again.stderr.strip() == (
        f"fleet: error: {tmp_path}/secure/passwd exists: --force replaces every password "
        "(cars and bridge need the new ones)"
    )
    assert run_fleet(["secure", "init", "--cars", "1", "--dir", str(tmp_path), "--force"]).returncode == 0


def test_init_takes_the_car_count_from_the_simulators_setting(tmp_path):
    env = {"FLEET_SIM_CARS": "0", "FLEET_STACK_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    result = run_fleet(["secure", "init"], env=env)
    assert result.returncode == 2
    assert result.stderr.strip() == "fleet: error: FLEET_SIM_CARS=0: expected >= 1"


def test_certs_are_made_once(tmp_path):
    first = run_fleet(["secure", "certs", "--dir", str(tmp_path)])
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "certs" / "server.crt").exists()
    second = run_fleet(["secure", "certs", "--dir", str(tmp_path)])
    assert second.returncode == 0
    assert "certificates exist, kept" in second.stdout
