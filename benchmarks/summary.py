"""One table of every benchmark's figures against its target, from their JSON under .local/bench/.

`make bench` runs each benchmark BENCH_RUNS times (3; the sustained one once) one after another,
keeping each run's figures as `.local/bench/<name>.run<k>.json`, then this: one table (figure,
target, measured, met) and the same as `.local/bench/summary.json`. A figure measured in several
runs shows their median and spread (lowest-highest), and its target is judged on the median. A
benchmark with no run on record (a benchmark run alone writes only `<name>.json`, which counts as
one run) is listed as not run, so a table is never silently short.

    .venv/bin/python benchmarks/summary.py
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import OUT_DIR, ROOT

BENCHMARKS = ("command_write", "read_path", "realtime", "peer", "pipeline", "sustained")


def target_text(figure: dict[str, object]) -> str:
    if figure.get("target") is None:
        return ""
    sign = ">=" if figure.get("higher_is_better", True) else "<"
    return f"{sign} {figure['target']:g} {figure['unit']}".strip()


def measured_text(figure: dict[str, object]) -> str:
    value = float(figure["value"])  # type: ignore[arg-type]
    shown = "n/a" if math.isnan(value) else f"{value:,.1f}"
    runs: list[float] = figure.get("values") or []  # type: ignore[assignment]
    values = [v for v in runs if not math.isnan(v)]
    if len(runs) > 1 and values:
        shown += f" ({min(values):,.1f}-{max(values):,.1f}, {len(runs)} runs)"
    return f"{shown} {figure['unit']}".strip()


def met(figure: dict[str, object]) -> bool | None:
    target, value = figure.get("target"), float(figure["value"])  # type: ignore[arg-type]
    if target is None:
        return None
    return value >= target if figure.get("higher_is_better", True) else value < target  # type: ignore[operator]


def runs_of(name: str) -> list[Path]:
    """A benchmark's runs on record: those `make bench` kept, or else the one it last wrote."""
    kept = sorted(OUT_DIR.glob(f"{name}.run*.json"), key=lambda p: int(p.stem.rsplit(".run", 1)[1] or 0))
    single = OUT_DIR / f"{name}.json"
    return kept or ([single] if single.exists() else [])


def combined(runs: list[Path]) -> list[dict[str, object]]:
    """Each figure once, in the order of its first run: the median of its runs' values, and the values."""
    figures: dict[str, dict[str, object]] = {}
    values: dict[str, list[float]] = {}
    for run in runs:
        for figure in json.loads(run.read_text()):
            figures.setdefault(figure["name"], figure)
            values.setdefault(figure["name"], []).append(float(figure["value"]))
    result = []
    for name, figure in figures.items():
        measured = [v for v in values[name] if not math.isnan(v)]
        median = statistics.median(measured) if measured else math.nan
        row = {**figure, "value": median, "values": values[name]}
        result.append({**row, "met": met(row)})
    return result


def main() -> int:
    rows: list[dict[str, object]] = []
    missing = []
    for name in BENCHMARKS:
        runs = runs_of(name)
        if not runs:
            missing.append(name)
            continue
        written = datetime.fromtimestamp(max(r.stat().st_mtime for r in runs), UTC).isoformat(timespec="seconds")
        for figure in combined(runs):
            rows.append({"benchmark": name, "written": written, **figure, "target_text": target_text(figure)})
    print(f"\n{'benchmark':<14} {'figure':<52} {'target':>14} {'measured':>16}  met")
    for row in rows:
        verdict = {True: "yes", False: "NO", None: "-"}[row["met"]]  # type: ignore[index]
        name = str(row["name"])
        print(f"{row['benchmark']:<14} {name:<52} {row['target_text']:>14} {measured_text(row):>16}  {verdict}")
    for name in missing:
        print(f"{name:<14} (not run: no {OUT_DIR.relative_to(ROOT)}/{name}.json)")
    judged = [r for r in rows if r["met"] is not None]
    met_count = sum(1 for r in judged if r["met"])
    print(f"\n{met_count} of {len(judged)} targets met (a figure of several runs: on its median)")
    path = OUT_DIR / "summary.json"
    path.write_text(json.dumps({"figures": rows, "not_run": missing}, indent=2))
    print(f"(written to {path.relative_to(ROOT)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
