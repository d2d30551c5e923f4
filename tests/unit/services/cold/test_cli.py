"""`fleet cold` and `fleet lake`: one-line errors, env names in --help, audit exit codes."""

from services.cold.settings import ColdSettings
from services.common.errors import ConfigError
from tests.helpers import run_fleet


def test_bad_settings_are_one_line_before_any_connection():
    cases = [
        (["cold", "--flush-rows", "0"], {}, "FLEET_COLD_FLUSH_ROWS=0: expected >= 1"),
        (["cold"], {"FLEET_COLD_COMPRESSION": "brotli"}, "FLEET_COLD_COMPRESSION='brotli': expected one of"),
        (
            ["cold"],
            {"FLEET_COLD_ROW_GROUP_ROWS": "10"},
            "FLEET_COLD_ROW_GROUP_ROWS=10: expected 100000..1000000",
        ),
        (["cold"], {"FLEET_COLD_IDLE_S": "soon"}, "FLEET_COLD_IDLE_S='soon': expected a number"),
        (["lake", "compact"], {"FLEET_COLD_COMPACT_GRACE_S": "-1"}, "FLEET_COLD_COMPACT_GRACE_S=-1.0"),
    ]
    for args, env, message in cases:
        result = run_fleet(args, env={"PATH": "/usr/bin:/bin", **env})
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.strip().count("\n") == 0, result.stderr
        assert message in result.stderr, result.stderr


def test_unknown_flag_and_missing_subcommand_are_one_line():
    for args in (["cold", "--nope"], ["lake"], ["lake", "audit", "--nope"]):
        result = run_fleet(args)
        assert result.returncode == 2
        assert result.stderr.strip().count("\n") == 0, result.stderr


def test_help_shows_env_names_and_defaults():
    result = run_fleet(["cold", "--help"])
    assert result.returncode == 0
    for text in ("FLEET_COLD_FLUSH_ROWS", "FLEET_LAKE_DIR", "default 9466", "FLEET_COLD_MEMORY_BUDGET_BYTES"):
        assert text in result.stdout


def test_unreachable_broker_is_one_line_for_the_audit(tmp_path):
    result = run_fleet(["lake", "audit", "--bootstrap", "127.0.0.1:1", "--dir", str(tmp_path)], timeout=90)
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "Traceback" not in result.stderr


def test_compact_on_an_empty_lake_reports_nothing_to_do(tmp_path):
    result = run_fleet(["lake", "compact", "--dir", str(tmp_path), "--json"])
    assert result.returncode == 0, result.stderr
    assert '"files_in": 0' in result.stdout


def test_kinds_map_topics_to_lake_folders():
    settings = ColdSettings.from_env({"FLEET_COLD_TOPIC_PREFIX": "t.", "FLEET_COLD_ALERTS_TOPIC": ""})
    assert settings.kinds == {
        f"t.{s}": s for s in ("engine", "transmission", "electronics", "chassis", "infotainment")
    }
    try:
        ColdSettings.from_env({"FLEET_COLD_MEMORY_BUDGET_BYTES": "1024"})
    except ConfigError as exc:
        assert "FLEET_COLD_MEMORY_BUDGET_BYTES=1024" in str(exc)
    else:
        raise AssertionError("a budget below one flush must be refused")
