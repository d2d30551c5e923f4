"""Unit tests of the hot path's pure core (rules, config, alerts, engine) and its model check."""
