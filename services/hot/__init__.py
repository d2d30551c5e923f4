"""The hot path: health alerts from the telemetry topics, in real time, on `alerts.health`.

alerts.py    the Alert record (to_json / from_json), Severity, Status, deterministic alert_id
config.py    rule settings: defaults in code, infra/rules.yaml overrides (RulesConfig, load_rules)
rules.py     the rules as pure functions of (state, frame) -> (state, events), one per kind
engine.py    RuleEngine: every rule for one car, one JSON-able state per VIN, on_frame / on_timer

The Faust wiring (app, batch consumer, the per-VIN Table, the staleness timer) lives beside these and
stays thin: it decodes a record, calls `RuleEngine.on_frame`, sends the alerts, stores the state.
"""
