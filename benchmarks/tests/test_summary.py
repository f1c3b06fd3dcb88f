"""The summary of several runs: each figure's median and spread, its target judged on the median."""

import json

from benchmarks import summary


def write_run(directory, name, run, figures):
    path = directory / f"{name}.run{run}.json" if run else directory / f"{name}.json"
    path.write_text(json.dumps(figures))


def figure(name, value, target=None, higher_is_better=True):
    return {"name": name, "value": value, "unit": "ms", "target": target, "higher_is_better": higher_is_better}


def test_a_figure_of_several_runs_is_their_median_and_is_judged_on_it(tmp_path, monkeypatch):
    monkeypatch.setattr(summary, "OUT_DIR", tmp_path)
    # A latency under 25: the runs' worst misses it, their median does not.
    for run, value in ((1, 30.0), (2, 10.0), (3, 20.0)):
        write_run(tmp_path, "peer", run, [figure("latency", value, 25.0, higher_is_better=False)])
    (row,) = summary.combined(summary.runs_of("peer"))
    assert row["value"] == 20.0
    assert row["values"] == [30.0, 10.0, 20.0]
    assert row["met"] is True
    assert summary.measured_text(row) == "20.0 (10.0-30.0, 3 runs) ms"


def test_runs_are_read_in_their_order_and_a_benchmark_run_alone_counts_as_one(tmp_path, monkeypatch):
    monkeypatch.setattr(summary, "OUT_DIR", tmp_path)
    for run in (10, 2, 1):
        write_run(tmp_path, "realtime", run, [figure("frames", float(run))])
    assert [p.name for p in summary.runs_of("realtime")] == [
        "realtime.run1.json",
        "realtime.run2.json",
        "realtime.run10.json",
    ]
    write_run(tmp_path, "sustained", None, [figure("posts/s", 480.0, 495.0)])
    (row,) = summary.combined(summary.runs_of("sustained"))
    assert (row["value"], row["met"]) == (480.0, False)
    assert summary.measured_text(row) == "480.0 ms"
    assert summary.runs_of("pipeline") == []


def test_a_figure_some_runs_could_not_measure_takes_the_median_of_those_that_did(tmp_path, monkeypatch):
    monkeypatch.setattr(summary, "OUT_DIR", tmp_path)
    for run, value in ((1, float("nan")), (2, 4.0), (3, 6.0)):
        write_run(tmp_path, "pipeline", run, [figure("cpu", value, 3.0, higher_is_better=False)])
    (row,) = summary.combined(summary.runs_of("pipeline"))
    assert (row["value"], row["met"]) == (5.0, False)
    assert summary.measured_text(row) == "5.0 (4.0-6.0, 3 runs) ms"
