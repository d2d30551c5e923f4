"""The one shape of every bench/results/<name>.json, and the README table built from them.

    {"name", "metric", "unit", "ours", "peer", "peer_name", "ceiling",
     "ratio_vs_peer", "ratio_vs_ceiling", "params", "measured_at"}

null where a field does not apply; a file with several metrics holds a list of such objects.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def result(
    name: str,
    metric: str,
    unit: str,
    ours: float,
    *,
    peer: float | None = None,
    peer_name: str | None = None,
    ceiling: float | None = None,
    lower_is_better: bool = False,
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One metric in the shared shape; ratios say how many times better ours is."""

    def ratio(other: float | None) -> float | None:
        if other is None or not ours or not other:
            return None
        return round(other / ours if lower_is_better else ours / other, 3)

    return {
        "name": name,
        "metric": metric,
        "unit": unit,
        "ours": round(ours, 4),
        "peer": None if peer is None else round(peer, 4),
        "peer_name": peer_name,
        "ceiling": None if ceiling is None else round(ceiling, 4),
        "ratio_vs_peer": ratio(peer),
        "ratio_vs_ceiling": ratio(ceiling),
        "params": params or {},
        "measured_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def write_results(name: str, results: list[dict[str, Any]]) -> Path:
    """Write bench/results/<name>.json and return its path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    return path


def median(values: list[float]) -> float:
    """The median (benchmarks report medians over repeats)."""
    return statistics.median(values)


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def markdown_table(results_dir: Path = RESULTS_DIR) -> str:
    """The README benchmark table from every results file."""
    rows = [
        "| benchmark | metric | unit | ours | peer | ours vs peer | ceiling | ours / ceiling | measured |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for path in sorted(results_dir.glob("*.json")):
        data = json.loads(path.read_text())
        for r in data if isinstance(data, list) else [data]:
            peer = f"{_num(r['peer'])} ({r['peer_name']})" if r["peer"] is not None else "-"
            vs_peer = f"{r['ratio_vs_peer']}x" if r["ratio_vs_peer"] is not None else "-"
            vs_ceiling = f"{r['ratio_vs_ceiling']}" if r["ratio_vs_ceiling"] is not None else "-"
            rows.append(
                f"| {r['name']} | {r['metric']} | {r['unit']} | {_num(r['ours'])} | {peer} | {vs_peer} "
                f"| {_num(r['ceiling'])} | {vs_ceiling} | {r['measured_at'][:16]}Z |"
            )
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
