"""The benchmark instrument: the plain front's interpolation, iso-quality speedups, the noise of the noisy tasks, and
the quick preset end to end (JSON, plot, resume)."""

import json
from dataclasses import replace

import numpy as np
import pytest

from benchmarks import analysis, noise
from conftest import DATA_DIR


def front(*points):
    """A front from (instances, seconds, metric) triples."""
    return [{"instances": i, "seconds": s, "metric": m} for i, s, m in points]


FRONT = front((100, 10.0, 0.50), (200, 20.0, 0.70), (400, 40.0, 0.80))


def test_front_is_interpolated_linearly_between_budgets():
    needs = analysis.front_needs(FRONT, 0.75)
    assert needs["status"] == "interpolated"
    assert needs["instances"] == pytest.approx(300) and needs["seconds"] == pytest.approx(30)
    assert analysis.front_needs(FRONT, 0.70)["instances"] == pytest.approx(200)  # exactly at a budget


def test_a_target_below_the_smallest_budget_gives_an_upper_bound():
    needs = analysis.front_needs(FRONT, 0.3)
    assert needs == {"instances": 100.0, "seconds": 10.0, "status": "below"}
    run = {"final_validation": 0.3, "boss_instances": 50, "train_seconds": 4.0}
    speedup = analysis.iso_quality(run, FRONT)
    assert speedup["instances"] == pytest.approx(2.0) and speedup["bound"] == "at_most"


def test_a_run_beyond_the_full_plain_run_reports_its_gain_not_an_extrapolation():
    run = {"final_validation": 0.83, "boss_instances": 200, "train_seconds": 25.0}
    speedup = analysis.iso_quality(run, FRONT)
    assert speedup["bound"] == "at_least"
    assert speedup["instances"] == pytest.approx(2.0)  # the full run's 400 instances, which the front needs at least
    assert speedup["seconds"] == pytest.approx(40 / 25)
    assert speedup["gain_over_full_plain"] == pytest.approx(0.03)


def test_a_non_monotone_front_is_read_from_its_smallest_budget():
    # overtraining on noisy data: the middle budget is the best, the full run falls back
    dipping = front((100, 10.0, 0.50), (200, 20.0, 0.80), (400, 40.0, 0.60))
    assert analysis.front_needs(dipping, 0.65)["instances"] == pytest.approx(150)  # not the 0.60 of the full run
    beats_full_only = {"final_validation": 0.7, "boss_instances": 300, "train_seconds": 30.0}
    speedup = analysis.iso_quality(beats_full_only, dipping)
    assert speedup["bound"] == "exact" and speedup["instances"] == pytest.approx(166.6667 / 300, rel=1e-4)
    assert speedup["gain_over_full_plain"] == pytest.approx(0.1)
    # a dip below an earlier budget is crossed again only where the front first reaches the target
    valley = front((100, 10.0, 0.60), (200, 20.0, 0.40), (400, 40.0, 0.90))
    assert analysis.front_needs(valley, 0.65)["instances"] == pytest.approx(200 + 200 * 0.25 / 0.5)
    with pytest.raises(ValueError, match="front is empty"):
        analysis.front_needs([], 0.5)


def test_a_run_beyond_a_front_that_peaked_early_is_bounded_by_its_best_budget():
    # noisy data: the middle budget is the front's best; a run above every budget is compared with that one, not
    # credited with the full run's budget that it only had to beat after the front fell back
    dipping = front((100, 10.0, 0.50), (200, 20.0, 0.80), (400, 40.0, 0.60))
    run = {"final_validation": 0.85, "boss_instances": 300, "train_seconds": 30.0}
    speedup = analysis.iso_quality(run, dipping)
    assert speedup["bound"] == "at_least"
    assert speedup["instances"] == pytest.approx(200 / 300) and speedup["seconds"] == pytest.approx(20 / 30)
    assert speedup["gain_over_full_plain"] == pytest.approx(0.25)
    tied = front((100, 10.0, 0.80), (200, 20.0, 0.80))
    assert analysis.front_needs(tied, 0.9)["instances"] == 100  # among equal bests, the smallest budget


def test_the_convergence_check_compares_the_full_budget_with_the_one_before_within_one_seed_spread():
    def fronts(gains):
        return [plain(s, b, 100 * b, 10 * b, m) for s, gain in enumerate(gains)
                for b, m in ((0.7, 0.80 + 0.01 * s), (1.0, 0.80 + 0.01 * s + gain))]  # fmt: skip

    converged = analysis.convergence(fronts([0.0, 0.01, 0.02]), seeds=[0, 1, 2])
    # full runs 0.80, 0.82, 0.84: a spread of 0.04 against a median gain of 0.01
    assert converged["previous_budget"] == 0.7 and converged["seed_spread"] == pytest.approx(0.04)
    assert converged["gain"]["median"] == pytest.approx(0.01) and converged["passes"] is True
    assert analysis.convergence(fronts([0.05, 0.06, 0.07]), seeds=[0, 1, 2])["passes"] is False
    assert analysis.convergence(fronts([0.0, 0.0]), seeds=[0, 1, 2])["passes"] is None  # seed 2 not run yet


def test_the_perfect_filter_is_the_ceiling_each_strategy_is_measured_against():
    runs = [plain(0, 1.0, 200, 20.0, 6.0), strategy_run(0, "plain_clean", 1.0, 150, 15.0, 9.0),
            strategy_run(0, "plain_clean", 1.3333, 200, 20.0, 10.0), strategy_run(0, "autoassist", 0.3, 160, 16.0, 8.0)]  # fmt: skip
    result = analysis.analyse(runs, seeds=[0], default_points={"autoassist": 0.3})
    assert result["clean_ceiling"]["values"] == [10.0]  # the better of the two clean runs
    (entry,) = result["iso_quality_curves"]["autoassist"]
    assert entry["gap_won"]["values"] == [pytest.approx(0.5)]  # 6 -> 8 of the way from 6 to 10
    assert "clean_ceiling" not in analysis.analyse(runs[:1] + runs[3:], seeds=[0], default_points={})


def test_the_full_plan_runs_verdict_rows_on_five_seeds_and_the_rest_on_three():
    from benchmarks import run_benchmark
    from benchmarks.tasks import TASKS

    bench = run_benchmark.BenchmarkArguments(preset="full")
    plan = run_benchmark.PLANS["full"]
    noisy = run_benchmark.planned_runs(bench, plan, TASKS["translation-noisy"], seed=0)
    assert [v for s, v in noisy if s == "plain"] == [0.25, 0.5, 0.75, 1.0, 2.0]
    assert ("plain_clean", 1.0) in noisy and not any(s == "filtered" for s, _ in noisy)  # the default is the check
    assert [(s, v) for s, v in noisy if s in ("default", "random")] == [
        ("default", 0.5), ("random", 0.5), ("default", 1.0), ("random", 1.0), ("default", 2.0), ("random", 2.0)]
    # seeds 3 and 4 hold the converged verdict rows only
    assert run_benchmark.planned_runs(bench, plan, TASKS["translation-noisy"], seed=3) == [
        ("plain", 1.0), ("default", 1.0), ("random", 1.0)]
    assert run_benchmark.planned_runs(bench, plan, TASKS["translation-noisy"], seed=5) == []
    # --values 1.0: the converged verdict rows of every seed first
    converged = run_benchmark.BenchmarkArguments(preset="full", strategies=["plain", "default", "random"], values=[1.0])
    assert run_benchmark.planned_runs(converged, plan, TASKS["translation-noisy"], seed=0) == [
        ("plain", 1.0), ("default", 1.0), ("random", 1.0)]
    # tatoeba keeps its converged rows; the labels check is opt-in on images, so it runs alone there
    tatoeba = run_benchmark.planned_runs(bench, plan, TASKS["translation-tatoeba-noisy"], seed=0)
    assert max(v for s, v in tatoeba if s == "plain") == 1.0 and {v for s, v in tatoeba if s == "default"} == {1.0}
    assert ("filtered", 1.0) in run_benchmark.planned_runs(bench, plan, TASKS["vision-resnet"], seed=0)
    assert not any(s == "plain_clean" for s, _ in run_benchmark.planned_runs(bench, plan, TASKS["translation"]))


def plain(seed, budget, instances, seconds, metric):
    return {"seed": seed, "strategy": "plain", "budget": budget, "boss_instances": instances,
            "train_seconds": seconds, "final_validation": metric, "test_metric": metric}  # fmt: skip


def strategy_run(seed, strategy, point, instances, seconds, metric, **extra):
    return {"seed": seed, "strategy": strategy, "point": point, "boss_instances": instances,
            "train_seconds": seconds, "final_validation": metric, "test_metric": metric, **extra}  # fmt: skip


def test_analysis_reads_each_seed_against_its_own_front():
    runs = [plain(0, 0.5, 100, 10.0, 0.5), plain(0, 1.0, 200, 20.0, 0.7),
            plain(1, 0.5, 100, 10.0, 0.6), plain(1, 1.0, 200, 20.0, 0.8),
            strategy_run(0, "autoassist", 0.3, 100, 20.0, 0.6, kept_noisy_fraction=0.2, kept_clean_fraction=0.7),
            strategy_run(1, "autoassist", 0.3, 100, 20.0, 0.6, kept_noisy_fraction=0.4, kept_clean_fraction=0.9),
            strategy_run(0, "random", 0.3, 100, 10.0, 0.55), strategy_run(1, "random", 0.3, 100, 10.0, 0.62)]  # fmt: skip
    result = analysis.analyse(runs, seeds=[0, 1, 2], default_points={"autoassist": 0.3, "random": 0.3})
    # seed 0 reaches 0.6 at 150 instances of its front; seed 1's smallest budget already has 0.6
    iso = result["iso_quality"]["autoassist"]
    assert iso["instances"]["values"] == [pytest.approx(1.5), pytest.approx(1.0), None]
    assert iso["instances"]["bounds"] == ["exact", "at_most", None]
    assert iso["seconds"]["values"][0] == pytest.approx(15 / 20)
    assert result["front"]["plain"][1]["final_validation"]["values"] == [0.7, 0.8, None]
    assert result["autoassist_minus_random"]["0.3"]["values"] == [pytest.approx(0.05), pytest.approx(-0.02)]
    assert result["kept_noisy_fraction"]["autoassist"]["median"] == pytest.approx(0.3)
    assert result["kept_clean_fraction"]["autoassist"]["values"] == [0.7, 0.9, None]


def test_label_noise_flips_the_asked_fraction_to_other_classes_deterministically():
    labels = np.arange(1000) % 10
    flipped, noisy = noise.flip_labels(labels, 10, 0.3, seed=7)
    assert len(noisy) == 300 and len(set(noisy.tolist())) == 300
    assert np.all(flipped[noisy] != labels[noisy])
    clean = np.setdiff1d(np.arange(1000), noisy)
    assert np.array_equal(flipped[clean], labels[clean]) and np.array_equal(labels, np.arange(1000) % 10)
    again, noisy_again = noise.flip_labels(labels, 10, 0.3, seed=7)
    assert np.array_equal(again, flipped) and np.array_equal(noisy_again, noisy)
    assert not np.array_equal(noise.flip_labels(labels, 10, 0.3, seed=8)[1], noisy)
    # every other class is drawn (uniform over the 9 others, not a fixed shift)
    assert len(set(((flipped[noisy] - labels[noisy]) % 10).tolist())) == 9
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        noise.flip_labels(labels, 10, 1.5, seed=0)


def test_misaligned_pairs_never_keep_their_own_target():
    target_of, noisy = noise.misalign_pairs(1000, 0.25, seed=3)
    assert len(noisy) == 250 and sorted(target_of.tolist()) == list(range(1000))
    assert np.all(target_of[noisy] != noisy)
    assert set(target_of[noisy].tolist()) == set(noisy.tolist())  # shuffled among the chosen pairs only
    clean = np.setdiff1d(np.arange(1000), noisy)
    assert np.array_equal(target_of[clean], clean)
    assert np.array_equal(noise.misalign_pairs(1000, 0.25, seed=3)[0], target_of)


def as_lists(dataset) -> list:
    """The `labels` column as plain lists (class ids, or target token ids), whatever the dataset's format."""
    return [np.asarray(label).tolist() for label in dataset[:]["labels"]]


@pytest.mark.parametrize("name", ["vision-resnet-noisy", "translation-noisy", "translation-tatoeba-noisy"])
def test_noisy_tasks_corrupt_only_the_training_split(name, tmp_path):
    from benchmarks.tasks import DEFINED, TASKS

    noisy_task, clean_task = TASKS[name], DEFINED[name.removesuffix("-noisy")]
    preset = noisy_task.presets["quick"]
    noisy = noisy_task.load(str(DATA_DIR), preset, str(tmp_path / "noisy"), noisy_task.noise)
    clean = clean_task.load(str(DATA_DIR), preset, str(tmp_path / "clean"))
    assert clean.noisy_indices is None
    assert len(noisy.noisy_indices) == round(noisy_task.noise.fraction * len(noisy.train))
    for split in ("validation", "test"):
        assert as_lists(getattr(noisy, split)) == as_lists(getattr(clean, split))
    noisy_labels, clean_labels = as_lists(noisy.train), as_lists(clean.train)
    changed = [i for i, (a, b) in enumerate(zip(noisy_labels, clean_labels)) if a != b]
    assert changed == noisy.noisy_indices
    if "input_ids" in noisy.train.column_names:  # translation: the sources stay, only targets move
        assert noisy.train["input_ids"] == clean.train["input_ids"]


def test_random_replays_the_defaults_kept_share_of_the_whole_set_without_the_check(tmp_path):
    # the default on translation is the pairs check alone ('auto'); random skips as many pairs, drawn from all of them,
    # and is not trained where the default kept every pair (it would be the plain run)
    from benchmarks.run_benchmark import DEFAULT, RANDOM, BenchmarkArguments, run_specs
    from benchmarks.runs import autoassist_settings, training_arguments
    from benchmarks.tasks import TASKS

    task = TASKS["translation-noisy"]
    preset = task.presets["quick"]
    data = task.load(str(DATA_DIR), preset, str(tmp_path), task.noise)
    bench = BenchmarkArguments(task=task.name, preset="quick", strategies=[DEFAULT, RANDOM])
    args = training_arguments(task, preset, DEFAULT, 0, str(tmp_path), preset.num_train_epochs, {})
    assert args.autoassist_strategy == "auto" and autoassist_settings(args, data)["autoassist_plausibility"] == "pairs"
    num_samples = len(data.train)
    checked = {"autoassist_config": {"autoassist_warmup_epochs": 1.0}, "kept_fraction_per_epoch": [1.0, 0.75],
               "plausibility_flagged": num_samples // 4}  # fmt: skip
    specs = list(run_specs(task, data, bench, preset, 0, str(tmp_path), {1.0: checked}))
    (replay,) = [spec for spec in specs if spec.strategy == RANDOM]
    assert replay.options == {"autoassist_keep_prob": [0.75], "autoassist_plausibility": "none"}
    everything = {**checked, "kept_fraction_per_epoch": [1.0, 1.0], "plausibility_flagged": 0}
    assert [s.strategy for s in run_specs(task, data, bench, preset, 0, str(tmp_path), {1.0: everything})] == [DEFAULT]


def test_every_suite_task_and_studied_corpus_is_defined_once_under_its_name():
    from benchmarks.names import PLAUSIBILITY_CORPORA, SUITE_TASKS
    from benchmarks.plausibility import CORPUS_TASKS
    from benchmarks.tasks import DEFINED, TASKS

    assert list(TASKS) == list(SUITE_TASKS) and all(DEFINED[name] is TASKS[name] for name in SUITE_TASKS)
    assert all(name == task.name for name, task in DEFINED.items())
    assert set(CORPUS_TASKS) == set(PLAUSIBILITY_CORPORA)
    assert all(task.noise is None and task.plausibility == "pairs" for task in CORPUS_TASKS.values())


@pytest.mark.slow
def test_quick_preset_writes_the_documented_json_and_plot_and_resumes(tmp_path, capsys, monkeypatch):
    from benchmarks import run_benchmark

    argv = ["--task", "vision-resnet-noisy", "--preset", "quick", "--data_dir", str(DATA_DIR),
            "--output_dir", str(tmp_path), "--work_dir", str(tmp_path / "work"), "--max_train_samples", "384"]  # fmt: skip
    run_benchmark.main(argv)
    result = json.loads((tmp_path / "vision-resnet-noisy.json").read_text())
    assert (tmp_path / "vision-resnet-noisy.png").stat().st_size > 10_000
    assert {"front", "convergence", "verdicts", "against_plain", "noise", "command", "environment", "plan",
            "data"} <= set(result)  # fmt: skip
    assert result["data"] == {"train": 384, "validation": 256, "test": 256}
    assert result["noise"]["kind"] == "labels" and len(result["noise"]["indices"]) == round(0.3 * 384)
    assert [row["budget"] for row in result["front"]["plain"]] == [0.5, 1.0]
    assert result["front"]["plain"][0]["instances"]["values"] == [384]  # its own schedule: one of the two epochs
    assert set(result["against_plain"]) == {"plain_clean", "filtered"}  # labels check: opt-in on images, run alone
    by = {r["strategy"]: r for r in result["runs"]}
    verdict = result["verdicts"]["1.0"]
    assert verdict["vs_plain"]["test"]["values"] == [pytest.approx(by["default"]["test_metric"] - by["plain"]["test_metric"])]
    kept = by["default"]["kept_fraction_per_epoch"]
    if kept[1] < 1.0:  # random replays the default's second epoch (after the warmup)
        assert by["random"]["autoassist_options"]["autoassist_keep_prob"] == kept[1:]
        assert by["random"]["boss_instances"] < 2 * 384 and 0 <= verdict["kept_noisy_fraction"] <= 1
    # run again: every run is found by its fingerprint and kept, nothing trains
    capsys.readouterr()
    run_benchmark.main(argv)
    assert capsys.readouterr().out.count("recorded earlier with the same configuration") == len(result["runs"])
    assert json.loads((tmp_path / "vision-resnet-noisy.json").read_text())["runs"] == result["runs"]
    # another seed's plain run, alone: the plan's runs of seed 0 stay recorded beside it
    monkeypatch.setitem(run_benchmark.PLANS, "quick", replace(run_benchmark.PLANS["quick"], verdict_seeds=2))
    run_benchmark.main([*argv, "--seeds", "1", "--strategies", "plain", "--values", "1.0"])
    runs = json.loads((tmp_path / "vision-resnet-noisy.json").read_text())["runs"]
    assert runs[: len(result["runs"])] == result["runs"]
    assert [(r["seed"], r["strategy"], r["budget"]) for r in runs[len(result["runs"]):]] == [(1, "plain", 1.0)]


@pytest.mark.slow
def test_overhead_benchmark_runs_resumes_on_the_same_commit_and_writes_its_ratios(tmp_path, monkeypatch, capsys):
    from benchmarks import overhead

    def measure(repeats):
        capsys.readouterr()
        result = overhead.main(["--preset", "quick", "--repeats", str(repeats), "--models", "vision-resnet",
                                "--data_dir", str(DATA_DIR), "--output_dir", str(tmp_path), "--work_dir",
                                str(tmp_path / "work")])  # fmt: skip
        return result, capsys.readouterr().out.count(" instances, ")

    monkeypatch.setattr(overhead, "commit_measured", lambda: "a" * 40)
    first, trained = measure(1)
    assert trained == 4 and first["commit"] == "a" * 40
    result, trained = measure(2)  # goes on: only the second repeat trains, the first is read back
    assert trained == 4
    for name, records in first["models"]["vision-resnet"]["runs"].items():
        assert result["models"]["vision-resnet"]["runs"][name][0] == records[0]
    assert json.loads((tmp_path / "overhead.json").read_text()) == json.loads(json.dumps(result))
    numbers = result["models"]["vision-resnet"]
    for key in ("none_over_plain_throughput", "autoassist_over_random_seconds", "assistant_cpu_share"):
        assert len(numbers[key]["values"]) == 2 and numbers[key]["median"] > 0
    runs = numbers["runs"]
    # random replays the kept fractions of the autoassist run before it: the same Boss instances, up to the draw
    for autoassist, random in zip(runs["autoassist"], runs["random"]):
        assert abs(random["boss_instances"] - autoassist["boss_instances"]) <= 0.1 * autoassist["boss_instances"]
    assert [r["boss_instances"] for r in runs["none"]] == [r["boss_instances"] for r in runs["plain"]]
    monkeypatch.setattr(overhead, "commit_measured", lambda: None)  # code it cannot name: measured afresh
    assert measure(1)[1] == 4


def test_readme_tables_are_the_ones_the_committed_json_gives():
    from benchmarks import report

    assert report.main(["--check"]) == 0, "run `python benchmarks/report.py` after the suite"


def test_the_pairs_check_line_gives_the_ranges_of_the_study_rows_and_its_share_of_the_undisturbed_plain_run(tmp_path):
    from benchmarks import study_tables as tables

    def cell(noise, seed, recall=None, seconds=10.0):
        extra = {} if recall is None else {"recall": recall, "auc": 0.99, "flagged_clean": 0.02}
        return {"noise": noise, "fraction": 0.25 if noise != "none" else 0.0, "seed": seed, "flagged_fraction": 0.0,
                "seconds": seconds, **extra}  # fmt: skip

    cells = [cell("none", 0), cell("none", 1), cell("pairs", 0, 0.8, 20.0), cell("pairs", 1, 0.9),
             cell("shifted pairs", 0, 0.6), cell("shifted pairs", 1, 0.7)]  # fmt: skip
    (tmp_path / "plausibility-translation.json").write_text(json.dumps({"cells": cells, "torch_threads": 1}))
    runs = [{"strategy": "plain", "budget": 1.0, "train_seconds": t, "foreign_cpu_seconds": f}
            for t, f in ((100.0, 1.0), (300.0, 200.0), (200.0, 2.0))]  # fmt: skip; the 300 s run was disturbed
    line = tables.render_pairs_check([{"task": "translation", "runs": runs}], tmp_path)
    # medians per row: recall 0.85 (re-paired) and 0.65 (shifted); seconds 10-20 of a 150 s plain run
    assert line.startswith("- Multi30k en-de (2 seeds): clean pairs flagged 0.0%")
    assert "misaligned pairs found 0.65–0.85" in line and "10–20 s per check on 1 thread (6.7%–13.3%" in line
    assert "150 s" in line and "Tatoeba" not in line
    # a study on 4 times the suite's pairs: its seconds against a plain run of as many pairs
    sized = {"cells": cells, "torch_threads": 2, "train_pairs": 400}
    (tmp_path / "plausibility-translation-400.json").write_text(json.dumps(sized))
    lines = tables.render_pairs_check([{"task": "translation", "runs": runs, "data": {"train": 100}}], tmp_path)
    assert lines.splitlines()[0] == line
    assert lines.splitlines()[1].startswith("- Multi30k en-de, 400 pairs (2 seeds)")
    assert "(1.7%–3.3% of the suite's full plain translation run scaled to as many pairs, 600 s)" in lines
    # a study with one round of encoders (`--rounds 1`): its own line, named by the option
    (tmp_path / "plausibility-translation-rounds1.json").write_text(json.dumps({**sized, "rounds": 1, "train_pairs": 100}))
    lines = tables.render_pairs_check([{"task": "translation", "runs": runs, "data": {"train": 100}}], tmp_path)
    assert lines.splitlines()[2].startswith("- Multi30k en-de, `autoassist_plausibility_rounds=1` (2 seeds)")
    assert "10–20 s per check on 2 threads (6.7%–13.3% of the suite's full plain translation run, 150 s)" in lines


def test_the_check_share_table_sets_the_checks_seconds_beside_each_bosss_run(tmp_path):
    from benchmarks import study_tables as tables

    assert tables.render_check_share(tmp_path).startswith("Not measured yet")
    boss = {"model": {"d_model": 128, "layers": 2}, "seconds_per_pair": 0.0025, "recipe_seconds": 260.0,
            "check_share": {"rounds=2": 0.058, "rounds=1": 0.03}}  # fmt: skip
    study = {"check_seconds": {"rounds=2": 16.0, "rounds=1": 8.0}, "bosses": {"suite": boss}}
    (tmp_path / "check-share.json").write_text(json.dumps(study))
    table = tables.render_check_share(tmp_path).splitlines()
    assert table[0] == ("| Boss | seconds per pair | the recipe's run | check share, rounds=2 (16.0 s) | check share, "
                        "rounds=1 (8.0 s) |")
    assert table[2] == "| suite (d_model 128, 2+2 layers) | 2.50 ms | 260 s | 5.8% | 3.0% |"


def test_the_first_screen_gives_the_checks_own_seconds_from_its_undisturbed_runs():
    from benchmarks import suite_tables as tables

    def filtered(seed, seconds, check, foreign=1.0):
        return {"seed": seed, "strategy": "filtered", "point": 1.0, "train_seconds": seconds, "plausibility_seconds": check,
                "foreign_cpu_seconds": foreign, "autoassist_config": {"autoassist_plausibility": "pairs"}}  # fmt: skip

    entry = {"point": 1.0, "final_validation": {"median": 17.0, "values": [17.0, 17.5]},
             "seconds": {"median": 0.9, "values": [0.9, 1.1], "bounds": ["exact", "at_least"]},
             "kept_noisy_fraction": {"median": 0.1}, "kept_clean_fraction": {"median": 0.98}}  # fmt: skip
    result = {"task": "translation-noisy", "metric": "bleu", "default_points": {"filtered": 1.0},
              "iso_quality_curves": {"filtered": [entry]}, "autoassist_minus_random": {},
              "front": {"plain": [{"budget": 1.0, "final_validation": {"median": 15.5, "values": [15.0, 16.0]}}]},
              "runs": [filtered(0, 200.0, 10.0), filtered(1, 100.0, 20.0), filtered(2, 300.0, 12.0, foreign=100.0)]}  # fmt: skip
    text = tables.render_verdict([result])
    # the third run ran beside other work: its seconds are left out
    assert "the check itself 10–20 s of each run (5.0%–20.0% of its training seconds)" in text
    assert "the `pairs` check gains bleu on translation-noisy (every seed)" in text
    # a task whose check reads pairs has the check alone for its default (`autoassist_strategy="auto"`)
    assert "- translation-noisy: The default (`'auto'`: the `pairs` check alone, strategy `none`): bleu" in text
    # with the clean task beside it: the share of what the noise costs the full plain run that the check wins back
    clean = {"task": "translation", "metric": "bleu", "seeds": [0, 1], "runs": [], "default_points": {},
             "iso_quality_curves": {}, "autoassist_minus_random": {},
             "front": {"plain": [{"budget": 1.0, "final_validation": {"median": 19.5, "values": [19.0, 20.0]}}]}}  # fmt: skip
    noisy = {**result, "seeds": [0, 1], "noise": {"kind": "pairs", "fraction": 0.25}}
    text = tables.render_verdict([clean, noisy])
    assert "winning back 0.50 (0.50, 0.38) of what the noise costs it (translation's full plain run − this one's)" in text
    assert "The perfect filter" not in text  # not run on this task
    # with the perfect filter run at the recipe's epochs (and at the full run's instances, not the one reported)
    plain = [{"seed": seed, "strategy": "plain", "budget": budget, "num_train_epochs": 32 * budget,
              "train_seconds": 100.0 * budget, "boss_instances": 1000 * budget, "final_validation": metric,
              "foreign_cpu_seconds": 0.0} for seed in (0, 1) for budget, metric in ((0.5, 14.0), (1.0, 15.0 + seed))]  # fmt: skip
    clean_runs = [{"seed": seed, "strategy": "plain_clean", "num_train_epochs": epochs, "train_seconds": 80.0,
                   "boss_instances": 750, "final_validation": metric, "foreign_cpu_seconds": 0.0}
                  for seed, metric in ((0, 15.5), (1, 15.0)) for epochs in (32, 42.7)]  # fmt: skip
    noisy = {**noisy, "schedule": {"num_train_epochs": 32}, "runs": [*result["runs"], *plain, *clean_runs]}
    text = tables.render_verdict([clean, noisy])
    # seed 0 ends above its whole front (a bound), seed 1 reaches 15.0 where the front does at 75 of its 100 s
    assert ("The perfect filter (plain on the clean instances only, at the recipe's epochs): 15.50, 15.00 (− the full "
            "plain run +0.50, -1.00), iso-quality speedup in seconds ≥1.25, 0.94.") in text


def test_autoassist_points_that_trained_the_same_run_on_every_seed_are_named():
    from benchmarks import suite_tables as tables

    def run(seed, point, instances, skill=0.5):
        return {"strategy": "autoassist", "seed": seed, "point": point, "boss_instances": instances,
                "final_validation": instances / 10, "assistant_skill": skill}  # fmt: skip

    same = [run(0, 0.3, 70), run(0, 0.45, 70), run(1, 0.3, 71, 0.53), run(1, 0.45, 71, 0.53), run(0, 0.6, 80)]
    (note,) = tables._same_runs({"task": "t", "runs": same})
    assert note.startswith("- t: AutoAssist at 0.3 and 0.45 trained the same") and "both seeds" in note
    assert "0.50–0.53" in note
    differs = same[:3] + [run(1, 0.45, 72)]  # one seed apart: not the same run
    assert tables._same_runs({"task": "t", "runs": differs}) == []


@pytest.mark.slow
def test_a_probe_run_is_appended_with_the_command_that_made_it(tmp_path, monkeypatch):
    from benchmarks import runs

    monkeypatch.setattr(runs, "RESULTS", tmp_path)
    for seed in (0, 1):
        runs.append_probe_run("p.jsonl", "p.py", ["--seeds", "0 1"], {"seed": seed})
    lines = [json.loads(line) for line in (tmp_path / "probes" / "p.jsonl").read_text().splitlines()]
    assert [line["seed"] for line in lines] == [0, 1] and lines[0]["command"] == "python benchmarks/p.py --seeds '0 1'"


def test_a_variant_probe_summary_pairs_each_candidate_with_the_plain_run_of_its_seed_and_length():
    from benchmarks.default_variant_probe import summary_rows

    def run(seed, strategy, length, options, metric, instances):
        return {"task": "t", "strategy": strategy, "length": length, "options": options, "seed": seed,
                "test_metric": metric, "final_validation": metric, "boss_instances": instances,
                "train_seconds": instances / 100, "foreign_cpu_seconds": 0.0}  # fmt: skip

    records = [run(0, "plain", 1.0, {}, 0.80, 100), run(1, "plain", 1.0, {}, 0.90, 200),
               run(0, "plain", 2.0, {}, 0.10, 100),  # another length: not this candidate's baseline
               run(0, "default", 1.0, {"a": 1}, 0.81, 50), run(1, "default", 1.0, {"a": 1}, 0.89, 50),
               run(2, "default", 1.0, {"a": 1}, 0.99, 50)]  # fmt: skip
    (row,) = summary_rows(records)[2:]
    # seeds 0 and 1 only: +1 and -1 points, 0.5 and 0.25 of the instances
    assert row.startswith('| t | 1.0 | `{"a": 1}` | +0.00 [') and "| 0.38 [" in row and row.endswith("| 0, 1 |")


def test_the_test_curve_evaluates_every_n_epochs_and_at_the_last_and_leaves_the_random_state_as_it_was():
    from types import SimpleNamespace

    import torch

    from benchmarks.runs import TestCurve

    class Trainer:
        boss_instances = 0

        def evaluate(self, eval_dataset, metric_key_prefix):
            torch.rand(1)  # as a DataLoader drawing its base seed
            return {f"{metric_key_prefix}_accuracy": 0.5}

    curve = TestCurve(Trainer(), test_dataset=None, metric="accuracy", every=2)
    args = SimpleNamespace(num_train_epochs=5)
    for epoch in range(1, 6):
        before = torch.get_rng_state()
        curve.on_epoch_end(args, SimpleNamespace(epoch=float(epoch), global_step=10 * epoch), None)
        assert torch.equal(torch.get_rng_state(), before)
    assert [p["epoch"] for p in curve.points] == [2, 4, 5] and curve.points[-1]["optimizer_steps"] == 50


def test_a_runs_reach_is_where_its_curve_stays_at_or_above_the_plain_run_of_its_seed():
    from benchmarks.default_variant_probe import reach_rows

    def point(epoch, metric):
        return {"epoch": epoch, "test_metric": metric, "boss_instances": 10 * epoch, "optimizer_steps": epoch,
                "train_seconds": float(epoch)}  # fmt: skip

    def curve_run(seed, metrics):
        curve = [point(e, m) for e, m in enumerate(metrics, start=1)]
        return {"task": "t", "strategy": "default", "length": 2.0, "options": {}, "seed": seed,
                "test_metric": metrics[-1], "train_seconds": float(len(metrics)), "foreign_cpu_seconds": 0.0,
                "test_curve": curve}  # fmt: skip

    def suite_run(seed, strategy, metric, seconds):
        return {"seed": seed, "strategy": strategy, "test_metric": metric, "boss_instances": 80, "optimizer_steps": 8,
                "train_seconds": seconds, "foreign_cpu_seconds": 0.0,
                **({"budget": 2.0} if strategy == "plain" else {"length": 2.0})}  # fmt: skip

    # seed 0 passes 0.8 at epoch 2, falls back, and stays from epoch 4; seed 1 ends below its plain run
    records = [curve_run(0, [0.5, 0.81, 0.7, 0.82, 0.9]), curve_run(1, [0.5, 0.6, 0.7, 0.7, 0.75])]
    suite = [{"task": "t", "runs": [suite_run(0, "plain", 0.8, 10.0), suite_run(1, "plain", 0.8, 10.0),
                                    suite_run(0, "default", 0.9, 5.0), suite_run(1, "default", 0.75, 5.0)]}]  # fmt: skip
    cost = {"t": {"fixed": 0.0, "per_instance": 1.0, "separable": True}}
    (row,) = reach_rows(records, suite, cost)[2:]
    assert "| 4 (5), not reached (5) |" in row and row.count(" – ") == 3  # no mean over a seed that never reached
    (row,) = reach_rows(records[:1], suite, cost)[2:]
    # 40 of plain's 80 instances; 4 of its own 5 seconds, times the suite's 5 / 10
    assert row.endswith("| 4 (5) | 0.50 | 0.50 | 0.40 | 0 |")
    # the probe's own plain run of the seed, timed in the same hour, is the baseline where there is one
    own = {**suite_run(0, "plain", 0.8, 8.0), "task": "t", "length": 2.0}
    (row,) = reach_rows(records[:1] + [own], suite, cost)[2:]
    assert row.endswith("| 4 (5) | 0.50 | 0.50 | 0.50 | 0 |")  # 4 of its 8 seconds


def test_a_variant_probe_summary_of_a_file_with_no_runs_says_to_run_the_probe_first(tmp_path, monkeypatch):
    from benchmarks import default_variant_probe, names

    monkeypatch.setattr(names, "RESULTS", tmp_path)
    with pytest.raises(FileNotFoundError, match="run the probe first"):
        default_variant_probe.main(["--summarize", "--options", "{}", "--output", "never-written.jsonl"])


def test_an_option_that_changes_nothing_on_a_recipe_leaves_its_fingerprint_alone():
    from benchmarks.runs import fingerprint
    from benchmarks.tasks import TASKS

    def key(task, floor):
        preset = TASKS[task].presets["full"]
        return fingerprint(TASKS[task], preset, "default", 0, 20.0, {"autoassist_smoothing_floor": floor})

    assert key("vision-resnet", True) == key("vision-resnet", False)  # no label smoothing there
    assert key("translation-noisy", True) != key("translation-noisy", False)


def test_adaptive_floor_options_leave_a_smoothed_recipes_fingerprint_alone_and_change_an_image_recipes():
    from benchmarks.names import RESOLVED_STRATEGY
    from benchmarks.runs import fingerprint
    from benchmarks.tasks import TASKS

    def key(task, strategy, base_prob, learned_visits, unlearned_visits=0):
        settings = {"autoassist_base_prob": base_prob, "autoassist_learned_visits": learned_visits,
                    "autoassist_learned_margin": 0.1, "autoassist_smoothing_floor": False,
                    "autoassist_unlearned_visits": unlearned_visits,
                    RESOLVED_STRATEGY: strategy, "autoassist_strategy": "auto"}  # fmt: skip
        return fingerprint(TASKS[task], TASKS[task].presets["full"], "default", 0, 20.0, settings)

    # translation trains with label_smoothing_factor=0.1: no pair within the margin, every chance 1, and no learned
    # share to open the unlearned visits' gate
    assert key("translation", "adaptive", 0.1, 8.0, 8) == key("translation", "adaptive", 0.3, 0.0, 0)
    assert key("vision-resnet", "adaptive", 0.1, 8.0) != key("vision-resnet", "adaptive", 0.3, 0.0)
    assert key("vision-resnet", "adaptive", 0.1, 8.0, 8) != key("vision-resnet", "adaptive", 0.1, 8.0, 0)
    # options `adaptive` alone reads change nothing on another strategy's run
    assert key("vision-resnet", "autoassist", 0.3, 8.0) == key("vision-resnet", "autoassist", 0.3, 0.0)
    assert key("vision-resnet", "autoassist", 0.1, 0.0) != key("vision-resnet", "autoassist", 0.3, 0.0)


def test_reading_token_misses_changes_only_runs_with_token_targets_and_makes_a_smoothed_recipes_floor_count():
    from benchmarks.names import RESOLVED_STRATEGY
    from benchmarks.runs import fingerprint
    from benchmarks.tasks import TASKS

    def key(task, reading, base_prob=0.1):
        settings = {"autoassist_token_reading": reading, "autoassist_base_prob": base_prob,
                    "autoassist_learned_margin": 0.1, RESOLVED_STRATEGY: "adaptive", "autoassist_strategy": "auto"}  # fmt: skip
        return fingerprint(TASKS[task], TASKS[task].presets["full"], "default", 0, 20.0, settings)

    assert key("vision-resnet", "argmax") == key("vision-resnet", "loss")  # class labels: no tokens to miss
    assert key("translation", "argmax") != key("translation", "loss")
    # reading misses, a smoothed recipe's pairs can count as learned: its floor is no longer inert
    assert key("translation", "argmax", 0.1) != key("translation", "argmax", 0.3)
    assert key("translation", "loss", 0.1) == key("translation", "loss", 0.3)


def test_the_thinned_batch_multiple_changes_only_runs_that_thin_their_batches():
    from benchmarks.names import RESOLVED_STRATEGY
    from benchmarks.runs import fingerprint
    from benchmarks.tasks import TASKS

    def key(task, strategy, keep_steps, multiple):
        settings = {"autoassist_thinned_batch_multiple": multiple, "autoassist_keep_steps": keep_steps,
                    "autoassist_learned_margin": 0.1, RESOLVED_STRATEGY: strategy, "autoassist_strategy": strategy}  # fmt: skip
        return fingerprint(TASKS[task], TASKS[task].presets["full"], strategy, 0, 20.0, settings)

    assert key("vision-resnet", "adaptive", None, 8) != key("vision-resnet", "adaptive", None, 1)
    assert key("vision-resnet", "random", True, 8) != key("vision-resnet", "random", True, 1)  # replays thinned ones
    assert key("vision-resnet", "random", None, 8) == key("vision-resnet", "random", None, 1)  # fewer, full batches
    assert key("translation", "adaptive", None, 8) == key("translation", "adaptive", None, 1)  # smoothed: none thinned


def test_committed_runs_keep_their_fingerprints_under_todays_options():
    # an option added to the library changes every fingerprint unless `ADDED_LATER` names the value that does what
    # the runs before it did: the recorded studies would then be trained again from scratch
    from dataclasses import replace
    from pathlib import Path

    from benchmarks.runs import ADDED_LATER, fingerprint
    from benchmarks.tasks import TASKS
    from hf_autoassist import AutoAssistConfig

    results = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
    today = {k for k in vars(AutoAssistConfig(output_dir="unused")) if k.startswith("autoassist_")}
    checked = 0
    for path in sorted(results.glob("signals-*.json")):
        study = json.loads(path.read_text())
        task = TASKS[study["task"]]
        # the studies were scored on the small sets of the suite they read their front from (archived)
        sizes = json.loads((results / "archive" / "small-sets" / f"{task.name}.json").read_text())["data"]
        for run in study["runs"]:
            # the recipe as the run had it (translation trained 8 epochs then): only the options are checked here
            preset = replace(task.presets[study["preset"]], num_train_epochs=run["num_train_epochs"],
                             validation_samples=sizes["validation"], test_samples=sizes["test"])
            settings = dict(run["autoassist_config"])
            for name in today - set(settings):  # options the run predates, at the value that does what it did
                settings[name] = ADDED_LATER.get(name, getattr(AutoAssistConfig(output_dir="unused"), name))
            key = fingerprint(task, preset, run["strategy"], run["seed"], run["num_train_epochs"], settings)
            assert key == run["fingerprint"], f"{path.name}: {run['signal']} seed {run['seed']} {run['strategy']}"
            checked += 1
    assert checked > 100


def test_signal_study_places_each_signal_on_the_front_against_random_and_resumes(tmp_path, capsys):
    from benchmarks import run_benchmark, signals
    from benchmarks.runs import replayed_keep_probs

    common = ["--task", "vision-resnet-noisy", "--preset", "quick", "--data_dir", str(DATA_DIR),
              "--max_train_samples", "256"]  # fmt: skip
    run_benchmark.main([*common, "--output_dir", str(tmp_path), "--work_dir", str(tmp_path / "work"),
                        "--strategies", "plain"])  # fmt: skip
    argv = [*common, "--suite_dir", str(tmp_path), "--work_dir", str(tmp_path / "signals"),
            "--seeds", "0", "--signals", "decline", "reducible, in-epoch"]  # fmt: skip
    signals.main(argv)
    result = json.loads((tmp_path / "signals-vision-resnet-noisy.json").read_text())
    assert len(result["runs"]) == 4 and set(result["summary"]) == {"decline", "reducible, in-epoch"}
    by = {(r["signal"], r["strategy"]): r for r in result["runs"]}
    reducible = by[("reducible, in-epoch", "autoassist")]
    # the irreducible-loss models' instances count with the Boss's, and their held-out accuracy is reported
    assert reducible["irreducible"]["instances"] > 0 and 0 <= reducible["irreducible"]["heldout_accuracy"] <= 1
    random = by[("reducible, in-epoch", "random")]
    assert random["autoassist_config"]["autoassist_rescore_every"] == 20
    assert random["autoassist_options"]["autoassist_keep_prob"] == replayed_keep_probs(reducible, 1.0, 256)
    for run in result["runs"]:
        assert run["iso_quality"]["instances"] > 0 and 0 <= run["kept_noisy_fraction"] <= 1
    summary = result["summary"]["decline"]
    assert summary["seeds"] == [0] and summary["minus_random"]["values"][0] == pytest.approx(
        by[("decline", "autoassist")]["final_validation"] - by[("decline", "random")]["final_validation"])
    capsys.readouterr()
    signals.main(argv)  # resumes: nothing trains again
    assert "validation" not in capsys.readouterr().out
    # a later study of another signal adds to the JSON, keeping what the first recorded
    signals.main([*argv[:-3], "--signals", "learnable"])
    result = json.loads((tmp_path / "signals-vision-resnet-noisy.json").read_text())
    assert len(result["runs"]) == 6 and list(result["summary"]) == ["decline", "reducible, in-epoch", "learnable"]
    assert result["commands"][0].endswith("'reducible, in-epoch'") and result["commands"][-1].endswith("learnable")
    # a study that has not reached a seed yet (or was stopped before it) keeps that seed's records in the file
    later_seed = {**result["runs"][0], "seed": 1, "fingerprint": "recorded by an earlier study"}
    (tmp_path / "signals-vision-resnet-noisy.json").write_text(json.dumps({**result, "runs": result["runs"] + [later_seed]}))
    signals.main(argv)
    runs = json.loads((tmp_path / "signals-vision-resnet-noisy.json").read_text())["runs"]
    assert len(runs) == 7 and later_seed in runs


def test_a_run_trained_again_replaces_the_record_it_supersedes(monkeypatch):
    """Re-timing a default run changes the kept fractions random replays: the new random run takes the old
    one's place in the JSON instead of sitting beside it."""
    from benchmarks import run_benchmark

    monkeypatch.setattr(run_benchmark, "save", lambda result, output_dir: None)
    suite = object.__new__(run_benchmark.TaskSuite)
    old = {"seed": 1, "strategy": "random", "length": 0.5, "fingerprint": "old"}
    other = {"seed": 1, "strategy": "random", "length": 1.0, "fingerprint": "other"}
    suite.result, suite.recorded, suite.output_dir = {"runs": [old, other]}, {}, None
    new = {**old, "fingerprint": "new"}
    suite.add(new)
    assert suite.result["runs"] == [new, other] and suite.recorded == {"new": new}


def test_a_default_run_is_another_run_when_auto_resolves_to_another_strategy():
    # the runs recorded before `adaptive` did not record what "auto" resolved to: they keep their fingerprints while
    # it is what it was then, and a default run of today's "auto" is trained again
    from benchmarks.names import RESOLVED_STRATEGY
    from benchmarks.runs import fingerprint
    from benchmarks.tasks import TASKS

    task = TASKS["vision-resnet"]
    preset = task.presets["full"]
    before = {"autoassist_strategy": "auto", "autoassist_plausibility": None}

    def key(settings):
        return fingerprint(task, preset, "default", 0, 20.0, settings)

    assert key({**before, RESOLVED_STRATEGY: "autoassist"}) == key(before)
    assert key({**before, "autoassist_plausibility": "labels", RESOLVED_STRATEGY: "adaptive"}) != key(before)
    pairs = {"autoassist_strategy": "auto", "autoassist_plausibility": "pairs"}
    assert key({**pairs, RESOLVED_STRATEGY: "none"}) == key(pairs)
    assert key({**pairs, RESOLVED_STRATEGY: "adaptive"}) != key(pairs)
    random = {"autoassist_strategy": "random", "autoassist_plausibility": None}
    assert key({**random, RESOLVED_STRATEGY: "random"}) == key(random)
