"""`fleet schema export`: the catalog as a Markdown table or a VSS-style JSON tree."""

from __future__ import annotations

import json
from typing import Any

from schemas.arrow import arrow_type
from schemas.catalog import SCHEMA_VERSION, SIGNALS, Signal

_VSS_TYPES = {"float": "double", "bool": "boolean", "string": "string", "string[]": "string[]"}


def _bound(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def to_markdown() -> str:
    """One row per signal, grouped by subsystem in catalog order."""
    lines = [
        f"Signal catalog, schema_version {SCHEMA_VERSION} ({len(SIGNALS)} signals)",
        "",
        "| signal | subsystem | VSS v5.1 path | unit | type | min | max | description |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in SIGNALS:
        description = s.description + (f" ({', '.join(s.allowed)})" if s.allowed else "")
        lines.append(
            f"| `{s.name}` | {s.subsystem} | `{s.vss}` | {s.unit or '-'} | {s.type} | {_bound(s.min)} "
            f"| {_bound(s.max)} | {description} |"
        )
    return "\n".join(lines) + "\n"


def _vss_datatype(s: Signal) -> str:
    if s.type == "int":
        return str(arrow_type(s))  # int8 / int16 / int32, as VSS names them
    return _VSS_TYPES[s.type]


def to_vss_json() -> str:
    """A VSS-style tree: branches down to one sensor leaf per signal, with our short name."""
    root: dict[str, Any] = {}
    for s in SIGNALS:
        *branches, leaf = s.vss.split(".")
        node = root
        for name in branches:
            entry = node.setdefault(name, {"type": "branch", "children": {}})
            node = entry["children"]
        sensor: dict[str, Any] = {
            "type": "sensor",
            "datatype": _vss_datatype(s),
            "description": s.description,
        }
        if s.unit:
            sensor["unit"] = s.unit
        if s.min is not None:
            sensor["min"] = s.min
        if s.max is not None:
            sensor["max"] = s.max
        if s.allowed:
            sensor["allowed"] = list(s.allowed)
        sensor["x-fleet"] = {"name": s.name, "subsystem": s.subsystem, "schema_version": SCHEMA_VERSION}
        node[leaf] = sensor
    return json.dumps(root, indent=2) + "\n"
