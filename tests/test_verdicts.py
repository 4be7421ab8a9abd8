"""The suite's verdicts: paired intervals over seeds, words that follow them, random standing in for the plain run
where the default skipped nothing, and the first screen written from them."""

import pytest

from benchmarks import verdict_tables as first_screen, verdicts


def run(seed, strategy, test, seconds=100.0, instances=1000, **extra):
    field = {"plain": "budget", "default": "length", "random": "length"}.get(strategy, "point")
    return {"seed": seed, "strategy": strategy, field: extra.pop("value", 1.0), "test_metric": test,
            "final_validation": test, "train_seconds": seconds, "boss_instances": instances,
            "foreign_cpu_seconds": 0.0, **extra}  # fmt: skip


def test_an_interval_holding_zero_ties_and_one_above_it_gains():
    tight = verdicts.paired_interval([0.010, 0.012, 0.011, 0.009, 0.013])
    assert tight["low"] > 0 and verdicts.verdict_word(tight) == "gains"
    loose = verdicts.paired_interval([0.02, -0.01, 0.015])
    assert loose["low"] < 0 < loose["high"] and verdicts.verdict_word(loose) == "ties"
    assert verdicts.verdict_word(verdicts.paired_interval([-0.03, -0.02, -0.025])) == "loses"
    assert verdicts.paired_interval([0.5])["low"] is None  # one seed: no interval, no word
    assert verdicts.verdict_word(verdicts.paired_interval([0.5])) is None


def test_the_default_is_paired_by_seed_with_the_plain_run_of_its_length_and_with_random():
    runs = [run(s, "plain", 0.80 + s / 100, seconds=100.0) for s in range(3)]
    runs += [run(s, "plain", 0.70, seconds=50.0, value=0.5) for s in range(3)]  # the front's shorter budget
    runs += [run(s, "default", 0.80 + s / 100 + 0.005, seconds=70.0, instances=600,
                 kept_fraction_per_epoch=[1.0, 0.5]) for s in range(3)]  # fmt: skip
    runs += [run(s, "random", 0.79 + s / 100, seconds=69.0, instances=600, value=1.0) for s in range(2)]
    verdict = verdicts.length_verdict(runs, 1.0)
    assert verdict["vs_plain"]["test"]["mean"] == pytest.approx(0.005) and verdict["vs_plain"]["seeds"] == [0, 1, 2]
    assert verdict["vs_plain"]["seconds_ratio"]["mean"] == pytest.approx(0.7)
    assert verdict["vs_plain"]["instances_ratio"]["mean"] == pytest.approx(0.6)
    assert verdict["vs_random"]["seeds"] == [0, 1] and verdict["vs_random"]["test"]["mean"] == pytest.approx(0.015)
    assert verdict["random_is_plain"] == []  # seed 2's random is missing, not the plain run: it skipped instances
    # above every plain run of its seed: the front's best is what it needs, a lower bound
    assert verdict["iso_quality"]["test"]["bounds"] == ["at_least"] * 3
    assert verdict["iso_quality"]["test"]["values"][0] == pytest.approx(100 / 70)


def test_random_is_the_plain_run_where_the_default_kept_every_instance():
    runs = [run(s, "plain", 0.8 + s / 100) for s in range(3)]
    runs += [run(s, "default", 0.8 + s / 100, seconds=103.0, kept_fraction_per_epoch=[1.0, 1.0]) for s in range(3)]
    verdict = verdicts.length_verdict(runs, 1.0)
    assert verdict["random_is_plain"] == [0, 1, 2] and verdict["vs_random"]["test"]["values"] == [0.0, 0.0, 0.0]
    result = {
        "task": "translation", "metric": "bleu", "data": {"validation": 1014, "test": 2000},
        "verdicts": {"1.0": verdict},
        "runs": [{**r, "autoassist_config": {"autoassist_plausibility": "pairs"}} for r in runs],
    }  # fmt: skip
    text = first_screen.render_first_screen([result])
    row = text.splitlines()[2]
    assert row.startswith("| translation | converged | pairs check alone | same BLEU, 1.03× the time |")
    assert "= the plain run (nothing skipped)" in row and "translation 1,014 / 2,000" in text
    # the plot is the current default's: an archived default's table does not link it
    assert first_screen.PLOT in text and first_screen.PLOT not in first_screen.render_first_screen([result], False)


def test_the_first_screen_says_gains_or_losses_in_points_only_where_the_interval_excludes_zero():
    result = {"metric": "accuracy"}
    losing = {"test": verdicts.paired_interval([-0.010, -0.012, -0.008]),
              "seconds_ratio": verdicts.paired_interval([0.7, 0.72, 0.71]),
              "instances_ratio": verdicts.paired_interval([0.6, 0.6, 0.6])}  # fmt: skip
    assert first_screen.in_words(result, losing) == "-1.0 points, 0.71× the time"
    tying = {**losing, "test": verdicts.paired_interval([-0.010, 0.012, -0.008])}
    assert first_screen.in_words(result, tying) == "same accuracy, 0.71× the time"
    # no seed timed alone: the instances speak instead of the seconds
    untimed = {**tying, "seconds_ratio": verdicts.paired_interval([])}
    assert first_screen.in_words(result, untimed) == "same accuracy, 0.60× the instances"
    # counts priced at the task's step cost speak before the seconds, which the VM's drift moves
    counted = {**tying, "counted_seconds_ratio": verdicts.paired_interval([0.75, 0.75, 0.75])}
    assert first_screen.in_words(result, counted) == "same accuracy, 0.75× the time from counts"
    assert first_screen.interval_text(losing["test"], 100.0, "points").startswith("-1.00 [-1.50, -0.50] points")


def test_seconds_are_read_from_the_seeds_timed_alone_only():
    arm = {s: {"test_metric": 0.8, "final_validation": 0.8, "train_seconds": 70.0, "boss_instances": 60,
               "foreign_cpu_seconds": 0.0} for s in range(3)}  # fmt: skip
    plain = {s: {**arm[s], "train_seconds": 100.0, "boss_instances": 100} for s in range(3)}
    plain[1] = {**plain[1], "train_seconds": 300.0, "foreign_cpu_seconds": 200.0}  # timed beside other work
    comparison = verdicts.compare(arm, plain)
    assert comparison["disturbed_seeds"] == [1] and comparison["seconds_ratio"]["values"] == [0.7, 0.7]
    assert comparison["instances_ratio"]["n"] == 3
    assert first_screen.ratio_text({**comparison, "seeds": [0, 1, 2]}) == (
        "0.70× (0.60× instances; seconds from 2 of 3 seeds timed alone)")


def test_seconds_from_counts_price_each_runs_steps_and_instances_at_the_tasks_step_cost():
    # a step costs 10 ms plus 1 ms per instance; the default's runs keep the steps and thin the batches, and one of
    # them ran in a slower hour: its measured seconds move, the ones from its counts do not
    def timed(seed, strategy, steps, instances, slower=1.0, **extra):
        return run(seed, strategy, 0.8, seconds=slower * (0.01 * steps + 0.001 * instances), instances=instances,
                   optimizer_steps=steps, **extra)  # fmt: skip

    runs = [timed(s, "plain", 100, 12_800) for s in range(3)]
    runs += [timed(s, "default", 100, 6_400, slower=1.3 if s == 2 else 1.0, kept_fraction_per_epoch=[1.0, 0.5])
             for s in range(3)]  # fmt: skip
    vs_plain = verdicts.length_verdict(runs, 1.0)["vs_plain"]
    measured, counted = vs_plain["seconds_ratio"]["values"], vs_plain["counted_seconds_ratio"]["values"]
    assert measured[2] == pytest.approx(1.3 * 7.4 / 13.8)  # 0.70, where the other seeds read 0.54
    # the same counts give the same seconds, whatever the hour; the fit over every run (the slow one too) prices
    # them near the true 7.4 / 13.8
    assert counted[0] == counted[1] == counted[2] and abs(counted[0] - 7.4 / 13.8) < 0.06
    assert first_screen.ratio_text(vs_plain).endswith(f"(0.50× instances; {counted[0]:.2f}× from counts)")
    # steps that vary in tokens, not in instances, give no split: no seconds from counts
    text = [{**r, "train_seconds": 50.0 if r["strategy"] == "plain" else 60.0} for r in runs]
    assert verdicts.length_verdict(text, 1.0)["vs_plain"]["counted_seconds_ratio"] is None


def back_to_back(task, shares, batches=(128, 64, 32), step=0.01):
    """`step_cost.py`'s records: each repeat's batches timed with its own fixed share of a full batch's step."""
    return [{"task": task, "repeat": repeat, "fraction": n / batches[0], "batch_size": n, "optimizer_steps": 500,
             "boss_instances": 500 * n, "foreign_cpu_seconds": 0.0,
             "train_seconds": 500 * step * (share + (1 - share) * n / batches[0])}
            for repeat, share in enumerate(shares) for n in batches]  # fmt: skip


def test_counts_are_priced_at_the_step_cost_timed_back_to_back_not_at_the_drift_between_rows():
    def timed(seed, strategy, instances, slower):
        return run(seed, strategy, 0.8, seconds=slower * (0.3 * 100 + 0.7 * instances / 128),
                   instances=instances, optimizer_steps=100, kept_fraction_per_epoch=[1.0, 0.5])  # fmt: skip

    # the default's rows timed in a slow half hour, the plain rows in a fast one, random's between
    runs = [timed(s, "plain", 12_800, 1.0) for s in range(3)] + [timed(s, "default", 6_400, 1.4) for s in range(3)]
    runs += [timed(s, "random", 3_200, 1.2) for s in range(3)]
    truth = 0.3 + 0.7 * 0.5
    drifted = verdicts.length_verdict(runs, 1.0)["vs_plain"]["counted_seconds_ratio"]["mean"]
    assert abs(drifted - truth) > 0.05  # the fit over the rows reads the drift as a fixed part
    cost = verdicts.back_to_back_cost(back_to_back("vision-resnet", [0.25, 0.3, 0.5]))
    assert cost["fixed_share"] == pytest.approx(0.3) and cost["repeats"] == 3
    verdict = verdicts.length_verdict(runs, 1.0, cost)
    assert verdict["vs_plain"]["counted_seconds_ratio"]["mean"] == pytest.approx(truth)
    # the front priced alike: a plain run at half the budget, timed in a fast hour, reaches the default's metric
    runs += [run(s, "plain", 0.8, seconds=10.0, instances=6_400, optimizer_steps=50, value=0.5) for s in range(3)]
    verdict = verdicts.length_verdict(runs, 1.0, cost)
    assert verdict["iso_quality"]["test"]["median"] == pytest.approx(10.0 / (1.4 * 100 * truth))
    assert verdict["counted_iso_quality"]["test"]["median"] == pytest.approx(0.5 / truth)


def test_a_disturbed_repeat_is_left_out_of_the_back_to_back_cost_and_its_table():
    records = back_to_back("vision-vit", [0.2, 0.9, 0.4])
    records[3]["foreign_cpu_seconds"] = records[3]["train_seconds"]  # repeat 1: something else ran beside it
    cost = verdicts.back_to_back_cost(records)
    assert cost["fixed_shares"] == pytest.approx([0.2, 0.4]) and cost["repeats"] == 2
    row = first_screen.render_step_cost_back_to_back(records).splitlines()[2]
    assert row == "| vision-vit | 128 / 64 / 32 | 0.30 (0.20 to 0.40) | 0.79× (0.76× to 0.82×) | 2 |"
    assert first_screen.render_step_cost_back_to_back([]).count("\n") == 1  # the header alone


def test_the_fronts_seconds_are_those_of_its_runs_timed_alone():
    runs = [run(s, "plain", 0.80, seconds=100.0 + s, value=0.5) for s in range(3)]
    runs += [run(s, "plain", 0.82, seconds=200.0) for s in range(5)]  # seeds 3 and 4: verdict rows, not the front
    runs[1] = {**runs[1], "train_seconds": 300.0, "foreign_cpu_seconds": 150.0}  # timed beside other work
    runs[4] = {**runs[4], "foreign_cpu_seconds": None}  # recorded before foreign CPU was measured
    result = {"task": "vision-resnet", "metric": "accuracy", "runs": runs, "convergence": {"passes": True},
              "front": verdicts.analyse(runs)["front"]}  # fmt: skip
    half, converged = first_screen.render_front([result]).splitlines()[2:]
    assert "| 101 (2 of 3 timed alone) |" in half and "| 200 (2 of 3 timed alone) | yes |" in converged


def test_a_verdict_that_changed_between_the_suites_is_marked_flipped():
    archived = {"task": "vision-resnet", "default_points": {"autoassist": 0.3}, "runs": [
        *[run(s, "plain", 0.80) for s in range(3)],
        *[{**run(s, "autoassist", 0.81, value=0.3), "point": 0.3} for s in range(3)],  # above on every seed, then
        *[{**run(s, "random", 0.79, value=0.3), "point": 0.3} for s in range(3)],
    ]}  # fmt: skip
    runs = [run(s, "plain", 0.80 + s / 100) for s in range(5)]
    runs += [run(s, "default", 0.80 + s / 100 + (0.001 if s % 2 else -0.001), kept_fraction_per_epoch=[1.0, 0.6])
             for s in range(5)]  # fmt: skip
    runs += [run(s, "random", 0.80 + s / 100 - 0.01, value=1.0) for s in range(5)]
    result = {"task": "vision-resnet", "metric": "accuracy", "verdicts": {"1.0": verdicts.length_verdict(runs, 1.0)}}
    (row,) = first_screen.render_flips([result], [archived]).splitlines()[2:]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[1].startswith("above on every seed (+1.00, +1.00, +1.00)") and cells[2].startswith("ties") and cells[3] == "yes"
    assert cells[4].startswith("above on every seed") and cells[5].startswith("gains") and cells[6] == "no"


def test_the_plot_names_each_task_by_colour_and_each_recipe_length_by_shape_once():
    def result(task, metric, lengths, timed=True):
        runs = []
        for length in lengths:
            runs += [run(s, "plain", 0.80 + s / 100, value=length) for s in range(3)]
            runs += [run(s, "default", 0.81 + s / 100, seconds=70.0, instances=600, value=length,
                         kept_fraction_per_epoch=[1.0, 0.6], foreign_cpu_seconds=0.0 if timed else 60.0)
                     for s in range(3)]  # fmt: skip
        return {"task": task, "metric": metric,
                "verdicts": {str(length): verdicts.length_verdict(runs, length) for length in lengths}}  # fmt: skip

    figure = first_screen.first_screen_figure([
        result("vision-resnet", "accuracy", (0.5, 1.0, 2.0)), result("vision-vit", "accuracy", (1.0,)),
        result("translation-noisy", "bleu", (1.0,), timed=False),
    ])  # fmt: skip
    images, text = ([t.get_text() for t in axis.get_legend().get_texts()] for axis in figure.axes)
    assert images == ["vision-resnet", "vision-vit", "half length", "converged", "double length"]
    assert text == ["translation-noisy", "converged (instances: not timed alone)"]
    assert sum(len(axis.containers) for axis in figure.axes) == 5  # one marker with its bars per task and length


def test_the_step_cost_table_prints_no_negative_time():
    def result(task, fixed):
        runs = [{"strategy": strategy, "optimizer_steps": 10, "boss_instances": n, "foreign_cpu_seconds": 0.0,
                 "train_seconds": fixed * 10 + n / 1000} for strategy, n in (("plain", 1280), ("default", 640),
                                                                            ("random", 320))]  # fmt: skip
        return {"task": task, "runs": runs}

    separable, tokens = first_screen.render_step_cost([result("vision", 0.01), result("text", -0.01)]).splitlines()[2:]
    assert separable == "| vision | 10.0 ms | 1.000 ms | 0.07 (of 128 instances) | 3 |"
    assert tokens.startswith("| text | not separable: the fit gives -10.0 ms") and tokens.endswith("| – | – | 3 |")
