"""The benchmark harness: time-to-target and paired statistics on synthetic curves, and the quick preset end to end."""

import json
import math

import pytest

from benchmarks import analysis
from conftest import DATA_DIR


def run(seed, strategy, final, seconds, instances, metrics):
    """A run record whose curve has evaluations at equal steps of time and instances."""
    n = len(metrics)
    curve = [
        {"instances": instances * (i + 1) // n, "train_seconds": seconds * (i + 1) / n, "metric": m}
        for i, m in enumerate(metrics)
    ]
    return {"seed": seed, "strategy": strategy, "final_validation": final, "test_metric": final - 0.01,
            "train_seconds": seconds, "boss_instances": instances, "curve": curve}  # fmt: skip


def test_time_to_target_is_the_first_evaluation_that_reaches_plain_final_metric():
    runs = [
        run(0, "plain", 0.90, 100.0, 1000, [0.5, 0.8, 0.89, 0.90]),
        run(0, "autoassist", 0.91, 60.0, 600, [0.6, 0.90, 0.91]),  # reaches 0.90 at its second evaluation
        run(0, "random", 0.85, 60.0, 600, [0.6, 0.8, 0.85]),  # never
    ]
    analysis.add_time_to_target(runs)
    plain, autoassist, random = runs
    assert plain["time_to_target_ratio"] == 1.0 and plain["instances_to_target_ratio"] == 1.0
    assert autoassist["seconds_to_target"] == 40.0 and autoassist["time_to_target_ratio"] == pytest.approx(0.4)
    assert autoassist["instances_to_target"] == 400
    assert random["seconds_to_target"] is None and random["time_to_target_ratio"] is None


def test_target_is_each_seeds_own_plain_run():
    runs = [run(0, "plain", 0.90, 10.0, 100, [0.9]), run(1, "plain", 0.80, 10.0, 100, [0.8]),
            run(0, "autoassist", 0.85, 5.0, 50, [0.85]), run(1, "autoassist", 0.85, 5.0, 50, [0.85])]  # fmt: skip
    analysis.add_time_to_target(runs)
    assert [r["time_to_target_ratio"] for r in runs[2:]] == [None, 0.5]


def test_never_reaching_counts_as_infinitely_slow_in_the_median():
    assert analysis.spread([None, None, 0.5])["median"] is None
    assert analysis.spread([None, 0.4, 0.5])["median"] == 0.5


def test_paired_differences_and_throughput_use_only_seeds_with_both_runs():
    runs = [run(0, "autoassist", 0.9, 1, 10, [0.9]), run(0, "random", 0.8, 1, 10, [0.8]),
            run(1, "autoassist", 0.7, 1, 10, [0.7]), run(2, "random", 0.1, 1, 10, [0.1]),
            run(0, "plain", 0.9, 2.0, 100, [0.9]), run(0, "none", 0.9, 2.5, 100, [0.9])]  # fmt: skip
    difference = analysis.paired_differences(runs, "autoassist", "random")
    assert difference["seeds"] == [0] and difference["median"] == pytest.approx(0.1)
    assert analysis.throughput_ratio(runs)["median"] == pytest.approx(0.8)


RUN_KEYS = {
    "seed", "strategy", "num_train_epochs", "autoassist_options", "kept_fraction_per_epoch", "boss_instances",
    "boss_instances_forwarded", "boss_instances_backpropagated", "optimizer_steps", "assistant_seconds",
    "train_seconds", "eval_seconds", "final_validation", "test_metric", "curve", "target", "seconds_to_target",
    "instances_to_target", "time_to_target_ratio", "instances_to_target_ratio", "throughput", "autoassist_config",
    "assistant_skill",
}  # fmt: skip


@pytest.mark.slow
def test_quick_preset_writes_the_documented_json_and_plot(tmp_path):
    from benchmarks import run_benchmark

    run_benchmark.main([
        "--task", "vision-resnet", "--preset", "quick", "--data_dir", str(DATA_DIR), "--output_dir", str(tmp_path),
        "--work_dir", str(tmp_path / "work"), "--seeds", "0", "1", "--max_train_samples", "384",
        "--num_train_epochs", "2",
    ])  # fmt: skip
    result = json.loads((tmp_path / "vision-resnet.json").read_text())
    assert (tmp_path / "vision-resnet.png").stat().st_size > 10_000
    assert {"task", "preset", "command", "environment", "metric", "data", "schedule", "seeds", "runs", "summary",
            "paired_differences", "none_over_plain_throughput"} <= set(result)  # fmt: skip
    assert result["data"]["train"] == 384 and "--max_train_samples 384" in result["command"]
    assert len(result["runs"]) == 2 * 6
    for record in result["runs"]:
        assert RUN_KEYS <= set(record), RUN_KEYS - set(record)
        assert record["curve"] and record["curve"][-1]["instances"] == record["boss_instances"]
        assert record["final_validation"] == record["curve"][-1]["metric"]
    by = {(r["seed"], r["strategy"]): r for r in result["runs"]}
    for seed in (0, 1):
        autoassist, random, matched = by[seed, "autoassist"], by[seed, "random"], by[seed, "budget_matched"]
        # random replays autoassist's kept fraction of each shrunk epoch; budget-matched gets its instances
        assert random["autoassist_options"]["autoassist_keep_prob"] == autoassist["kept_fraction_per_epoch"][1:]
        assert matched["num_train_epochs"] == pytest.approx(autoassist["boss_instances"] / 384)
        assert autoassist["boss_instances"] < by[seed, "plain"]["boss_instances"] == 2 * 384
        assert by[seed, "none"]["boss_instances"] == 2 * 384
        assert by[seed, "plain"]["time_to_target_ratio"] <= 1.0
    assert "autoassist - random: final_validation" in result["paired_differences"]
    assert math.isfinite(result["none_over_plain_throughput"]["median"])


def test_readme_tables_are_the_ones_the_committed_json_gives():
    from benchmarks import report

    assert report.main(["--check"]) == 0, "run `python benchmarks/report.py` after the suite"
