"""The CLI's contract with a person: one-line errors, env defaults in --help."""

import subprocess
import sys

from tests.helpers import run_fleet


def test_unknown_flag_is_one_line_and_exit_2():
    result = run_fleet(["topics", "apply", "--no-such-flag"])
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "unrecognized arguments: --no-such-flag" in result.stderr


def test_unknown_verb_is_one_line():
    result = run_fleet(["fly"])
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0


def test_bad_environment_value_is_one_line_without_traceback():
    result = run_fleet(["status"], env={"FLEET_STACK_MQTT_PORT": "abc", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2
    assert result.stderr.strip() == "fleet: error: FLEET_STACK_MQTT_PORT='abc': expected an integer"


def test_bad_topics_file_is_one_line(tmp_path):
    bad = tmp_path / "t.yaml"
    bad.write_text("topics: {a: {partitions: -1}}")
    result = run_fleet(["topics", "locate", "VIN", "--file", str(bad)])
    assert result.returncode == 2
    assert "a.partitions: expected a positive integer" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_shows_env_names_and_defaults():
    result = run_fleet(["up", "--help"])
    assert result.returncode == 0
    assert "FLEET_STACK_KAFKA_PORT" in result.stdout
    assert "default 9092" in result.stdout


def test_locate_prints_the_java_partition_of_a_key():
    result = run_fleet(["topics", "locate", "21"])
    assert result.returncode == 0
    # murmur2("21") = -973932308 -> (& 0x7fffffff) = 1173551340 -> % 6 = 0
    assert "telemetry.engine           partition 0 of 6" in result.stdout


def test_unreachable_broker_is_one_line(tmp_path):
    result = run_fleet(["topics", "apply", "--bootstrap", "127.0.0.1:1"])
    assert result.returncode == 1
    assert result.stderr.strip().startswith("fleet: error: no Kafka broker answers at 127.0.0.1:1")
    assert result.stderr.strip().count("\n") == 0


def test_schema_export_markdown_and_vss_json():
    import json

    markdown = run_fleet(["schema", "export"])
    assert markdown.returncode == 0
    assert "| `coolant_temp_c` | engine | `Vehicle.Powertrain.CombustionEngine.ECT` |" in markdown.stdout
    vss = run_fleet(["schema", "export", "--format", "vss-json"])
    assert vss.returncode == 0
    assert json.loads(vss.stdout)["Vehicle"]["type"] == "branch"


def test_missing_scenario_file_is_one_line(tmp_path):
    result = run_fleet(
        ["simulate", "--out", str(tmp_path / "f.jsonl"), "--scenario", str(tmp_path / "nope.yaml")]
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("fleet: error: cannot read scenario")


def test_bridge_bad_settings_are_one_line_before_any_connection():
    cases = [
        (["bridge", "--max-inflight", "0"], {}, "FLEET_BRIDGE_MAX_INFLIGHT=0: expected 1..1000000"),
        (["bridge"], {"FLEET_BRIDGE_COMPRESSION": "lz4"}, "FLEET_BRIDGE_COMPRESSION='lz4': expected one of"),
        (["bridge"], {"FLEET_BRIDGE_SHARE_GROUP": "a/b"}, "FLEET_BRIDGE_SHARE_GROUP='a/b'"),
    ]
    for args, env, message in cases:
        result = run_fleet(args, env={"PATH": "/usr/bin:/bin", **env})
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip().count("\n") == 0 and message in result.stderr


def test_hot_with_a_missing_rules_file_is_one_line():
    result = run_fleet(["hot"], env={"PATH": "/usr/bin:/bin", "FLEET_HOT_RULES": "/no/such/rules.yaml"})
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == "fleet: error: cannot read rules file /no/such/rules.yaml: No such file or directory"
    )


def test_a_verb_builds_only_its_modules_parser_with_the_same_verbs():
    from services.cli import build_parser

    def verbs(parser):
        (action,) = [a for a in parser._actions if a.dest == "verb"]
        return set(action.choices)

    every = verbs(build_parser())
    for verb in every:
        assert verb in verbs(build_parser(verb)), verb
    assert verbs(build_parser("up")) == {"up", "down", "status"}
    assert verbs(build_parser("no-such-verb")) == every  # argparse then names the verbs there are


def test_a_service_process_does_not_import_duckdb_or_faust():
    code = (
        "import sys\n"
        "from services.cli import build_parser\n"
        "build_parser('cold').parse_args(['cold'])\n"
        "print(sorted(m for m in ('duckdb', 'faust') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
