"""One table of every benchmark's figures against its target, from their JSON under .local/bench/.

`make bench` runs the benchmarks one after another (each writes `.local/bench/<name>.json`),
then this: one table (figure, target, measured, met) and the same as `.local/bench/summary.json`.
A benchmark whose JSON is missing is listed as not run, so a table is never silently short.

    .venv/bin/python benchmarks/summary.py
"""

from __future__ import annotations

import json
import math
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import OUT_DIR, ROOT

BENCHMARKS = ("command_write", "read_path", "realtime", "pipeline", "sustained")


def target_text(figure: dict[str, object]) -> str:
    if figure.get("target") is None:
        return ""
    sign = ">=" if figure.get("higher_is_better", True) else "<"
    return f"{sign} {figure['target']:g} {figure['unit']}".strip()


def measured_text(figure: dict[str, object]) -> str:
    value = float(figure["value"])  # type: ignore[arg-type]
    shown = "n/a" if math.isnan(value) else f"{value:,.1f}"
    return f"{shown} {figure['unit']}".strip()


def main() -> int:
    rows: list[dict[str, object]] = []
    missing = []
    for name in BENCHMARKS:
        path = OUT_DIR / f"{name}.json"
        if not path.exists():
            missing.append(name)
            continue
        written = datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(timespec="seconds")
        for figure in json.loads(path.read_text()):
            rows.append({"benchmark": name, "written": written, **figure, "target_text": target_text(figure)})
    print(f"\n{'benchmark':<14} {'figure':<52} {'target':>14} {'measured':>16}  met")
    for row in rows:
        met = {True: "yes", False: "NO", None: "-"}[row["met"]]  # type: ignore[index]
        name = str(row["name"])
        print(f"{row['benchmark']:<14} {name:<52} {row['target_text']:>14} {measured_text(row):>16}  {met}")
    for name in missing:
        print(f"{name:<14} (not run: no {OUT_DIR.relative_to(ROOT)}/{name}.json)")
    judged = [r for r in rows if r["met"] is not None]
    met_count = sum(1 for r in judged if r["met"])
    print(f"\n{met_count} of {len(judged)} targets met")
    path = OUT_DIR / "summary.json"
    path.write_text(json.dumps({"figures": rows, "not_run": missing}, indent=2))
    print(f"(written to {path.relative_to(ROOT)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
