"""The acceptance rules of every strategy as plain functions: statistics, weights, schedules, unbiasedness."""

import math
from types import SimpleNamespace

import pytest
import torch

from hf_autoassist import AutoAssistConfig
from hf_autoassist.losses import per_instance_loss_terms, reweighted_loss
from hf_autoassist.loss_memory import LossMemory
from hf_autoassist.selection import acceptance_probability, inverse_probability_weights, sample_keep_mask, selects_in_epoch
from hf_autoassist.strategies import (
    STRATEGY_CLASSES,
    AdaptiveSelection,
    build_strategy,
    infobatch_selection,
    keep_probability_for_epoch,
)
from hf_autoassist.strategies.adaptive import adaptive_keep_probability, retained_keep_probability


def generator(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("prob", [0.1, 0.55, 0.9])
def test_random_keeps_its_probability_within_sampling_error(tmp_path, prob):
    args = AutoAssistConfig(output_dir=str(tmp_path), autoassist_strategy="random", autoassist_keep_prob=prob)
    strategy = build_strategy(args)
    n = 20000
    selection = strategy.select(torch.randperm(n), selecting_epoch=0, generator=generator())
    kept = selection.keep.float().mean().item()
    assert abs(kept - prob) < 4 * math.sqrt(prob * (1 - prob) / n)  # four standard errors
    assert selection.weights is None  # random skipping leaves the Trainer's loss untouched


def test_random_replays_a_kept_fraction_per_epoch_and_repeats_the_last():
    assert [keep_probability_for_epoch([0.8, 0.6], e) for e in range(4)] == [0.8, 0.6, 0.6, 0.6]


def test_keep_prob_is_validated_and_parsed_from_one_or_several_values(tmp_path):
    from transformers import HfArgumentParser

    (args,) = HfArgumentParser(AutoAssistConfig).parse_args_into_dataclasses(
        ["--output_dir", str(tmp_path), "--autoassist_strategy", "random", "--autoassist_keep_prob", "0.9", "0.5"]
    )
    assert args.autoassist_keep_prob == [0.9, 0.5]
    assert AutoAssistConfig(output_dir=str(tmp_path), autoassist_keep_prob=0.3).autoassist_keep_prob == [0.3]
    for bad in (0.0, 1.5, [0.5, -1.0]):
        with pytest.raises(ValueError, match="autoassist_keep_prob.*Use 1.0"):
            AutoAssistConfig(output_dir=str(tmp_path), autoassist_keep_prob=bad)
    with pytest.raises(ValueError, match="autoassist_prune_ratio.*1 / \\(1 - ratio\\)"):
        AutoAssistConfig(output_dir=str(tmp_path), autoassist_prune_ratio=1.0)
    with pytest.raises(ValueError, match="autoassist_full_data_finish"):
        AutoAssistConfig(output_dir=str(tmp_path), autoassist_full_data_finish=1.0)


def test_infobatch_prunes_its_ratio_of_the_below_mean_and_rescales_the_rest():
    torch.manual_seed(0)
    losses = torch.rand(10000) ** 2  # right-skewed, like real losses: most are below the mean
    seen = torch.ones(10000, dtype=torch.bool)
    selection = infobatch_selection(losses, seen, prune_ratio=0.5, generator=generator())
    below = losses < losses.mean()
    # exactly half of the below-mean instances are pruned; every above-mean instance is kept, unweighted
    assert (~selection.keep).sum() == round(0.5 * below.sum().item())
    assert selection.keep[~below].all()
    assert torch.all(selection.weights[~below] == 1.0)
    assert torch.all(selection.weights[below & selection.keep] == 2.0)  # 1 / (1 - 0.5)
    # the expected loss of the below-mean group is unchanged: sum over kept of w * loss ~ sum over all
    kept_sum = (selection.weights * losses * selection.keep)[below].sum()
    assert kept_sum.item() == pytest.approx(losses[below].sum().item(), rel=0.05)


def test_infobatch_always_keeps_instances_never_seen():
    losses = torch.tensor([0.1, 0.2, float("nan"), 5.0])
    seen = torch.tensor([True, True, False, True])
    selection = infobatch_selection(losses, seen, prune_ratio=0.99, generator=generator())
    assert selection.keep[2] and selection.keep[3]
    assert (~selection.keep).sum() == 2  # both below-mean seen instances


def test_full_data_finish_keeps_everything_in_the_last_epochs():
    # InfoBatch's default: the last 12.5% of 16 epochs are epochs 14 and 15; warmup epoch 0 keeps everything too
    selecting = [selects_in_epoch(e, e / 16, warmup_epochs=1, full_data_finish=0.125) for e in range(16)]
    assert selecting == [False] + [True] * 13 + [False, False]
    assert STRATEGY_CLASSES["infobatch"].default_full_data_finish == 0.125
    assert STRATEGY_CLASSES["autoassist"].default_full_data_finish == 0.0


def test_inverse_probability_weights_make_the_kept_loss_unbiased():
    torch.manual_seed(0)
    losses = torch.rand(50)
    probs = acceptance_probability(torch.rand(50), confidence=0.9, base_prob=0.3)
    weights = inverse_probability_weights(probs)
    draws = torch.stack([sample_keep_mask(probs, generator(s)) for s in range(4000)]).float()
    estimate = (draws * weights * losses).sum(1).mean()
    assert estimate.item() == pytest.approx(losses.sum().item(), rel=0.02)
    biased = (draws * losses).sum(1).mean()  # without the weights the high-score instances count too much
    assert abs(biased.item() - losses.sum().item()) > 0.1 * losses.sum().item()


@pytest.mark.parametrize("sequence", [False, True])
def test_reweighted_loss_is_the_trainer_loss_at_unit_weights_and_weights_each_gradient(sequence):
    torch.manual_seed(0)
    if sequence:
        logits = torch.randn(3, 5, 7, requires_grad=True)
        labels = torch.tensor([[1, 2, 3, -100, -100], [4, 5, 6, 1, 2], [3, -100, -100, -100, -100]])
        model_loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels, ignore_index=-100)
    else:
        logits = torch.randn(3, 7, requires_grad=True)
        labels = torch.tensor([1, 2, 3])
        model_loss = torch.nn.functional.cross_entropy(logits, labels)
    sums, counts = per_instance_loss_terms(logits, labels)
    same = reweighted_loss(model_loss, sums, counts, torch.ones(3))
    torch.testing.assert_close(same, model_loss)

    # weight 0 on the first instance: its logits get no gradient; a Trainer-side scale (x4) is kept
    weights = torch.tensor([0.0, 1.0, 2.0])
    loss = reweighted_loss(4 * model_loss, sums, counts, weights)
    (grad,) = torch.autograd.grad(loss, logits)
    torch.testing.assert_close(grad[0], torch.zeros_like(grad[0]), atol=1e-6, rtol=0)  # up to rounding
    expected = 4 * (weights * sums).sum() / counts[1:].sum()  # at weight 0 it counts in neither sum
    torch.testing.assert_close(loss, expected)
    # so the others' gradient is the one they get in a batch without it (an instance topping a batch up)
    without = torch.nn.functional.cross_entropy(
        logits[1:].transpose(1, 2) if sequence else logits[1:], labels[1:], ignore_index=-100
    )
    alone = reweighted_loss(4 * without, *per_instance_loss_terms(logits[1:], labels[1:]), weights[1:])
    (grad_alone,) = torch.autograd.grad(alone, logits)
    torch.testing.assert_close(grad, grad_alone)


def test_loss_memory_merge_takes_each_instance_from_the_rank_that_saw_it_last():
    class TwoRanks:
        num_processes, device = 2, "cpu"

        def __init__(self, other):
            self.other = other

        def gather(self, tensor):
            return torch.cat([tensor, getattr(self.other, "loss" if tensor.is_floating_point() else "step")[None]])

    mine, theirs = LossMemory(3), LossMemory(3)
    mine.update(torch.tensor([0, 1]), torch.tensor([1.0, 2.0]), step=5)
    theirs.update(torch.tensor([1, 2]), torch.tensor([7.0, 8.0]), step=6)
    mine.merge(TwoRanks(theirs))
    torch.testing.assert_close(mine.loss, torch.tensor([1.0, 7.0, 8.0]))
    assert mine.step.tolist() == [5, 6, 6]


def test_unknown_strategy_names_the_choices():
    with pytest.raises(ValueError, match="choose one of"):
        build_strategy(SimpleNamespace(autoassist_strategy="bogus"))


def test_adaptive_keeps_what_is_left_to_learn_and_weights_by_the_inverse():
    strategy = AdaptiveSelection(learned_margin=0.1, base_prob=0.2)
    strategy.prepare(list(range(6)))
    # right with p = 0.99, 0.95, 0.5, 0.1; the last two never seen
    losses = -torch.log(torch.tensor([0.99, 0.95, 0.5, 0.1]))
    strategy.observe(torch.arange(4), losses, step=1)
    probs = adaptive_keep_probability(strategy.memory.loss, strategy.memory.seen, 0.1, 0.2)
    assert probs.tolist() == pytest.approx([0.2, 0.5, 1.0, 1.0, 1.0, 1.0], abs=1e-4)
    draws = torch.stack([strategy.select(torch.arange(6), 0, generator(seed)).keep for seed in range(2000)])
    assert draws.float().mean(0).tolist() == pytest.approx(probs.tolist(), abs=0.04)
    selection = strategy.select(torch.arange(6), 0, generator())
    assert torch.allclose(selection.weights, 1.0 / probs)
    unweighted = AdaptiveSelection(learned_margin=0.1, base_prob=0.2, reweight=False)
    unweighted.prepare(list(range(6)))
    unweighted.observe(torch.arange(4), losses, step=1)
    assert unweighted.select(torch.arange(6), 0, generator()).weights is None and not unweighted.reweights


def test_with_the_smoothing_floor_a_fitted_smoothed_instance_counts_as_learned(tmp_path):
    from hf_autoassist.run import SelectionRun

    floor = 1.0846  # label_smoothing_factor 0.1 over 2,000 tokens
    for smoothing_floor, kept in ((False, 1.0), (True, 0.3)):
        run = SelectionRun.__new__(SelectionRun)  # its observe alone: the strategy and no labels check
        run.strategy = AdaptiveSelection.from_args(
            AutoAssistConfig(str(tmp_path), autoassist_smoothing_floor=smoothing_floor, report_to="none")
        )
        run.label_check = None
        run.strategy.prepare(list(range(2)))
        run.observe(torch.arange(2), torch.tensor([floor, floor + 2.0]), 1, floor=floor)
        probs = adaptive_keep_probability(run.strategy.memory.loss, run.strategy.memory.seen, 0.1, 0.3)
        assert probs.tolist() == pytest.approx([kept, 1.0], abs=1e-4)


def test_adaptive_reading_token_misses_keeps_a_pair_with_every_token_right_at_the_floor_whatever_its_loss():
    strategy = AdaptiveSelection(learned_margin=0.1, base_prob=0.2, token_reading="argmax")
    strategy.prepare(list(range(4)))
    assert strategy.reads_token_misses
    # every token right, 1 of 20 wrong, half wrong; the loss (smoothed, under dropout) above the margin on all three
    strategy.observe_token_misses(torch.arange(3), torch.tensor([0.0, 0.05, 0.5]), step=1)
    strategy.observe(torch.arange(3), torch.tensor([1.4, 1.5, 3.0]), step=1)
    draws = torch.stack([strategy.select(torch.arange(4), 0, generator(seed)).keep for seed in range(2000)])
    assert draws.float().mean(0).tolist() == pytest.approx([0.2, 0.5, 1.0, 1.0], abs=0.04)
    resumed = AdaptiveSelection(learned_margin=0.1, base_prob=0.2, token_reading="argmax")
    resumed.prepare(list(range(4)))
    resumed.load_state_dict(strategy.state_dict())
    assert torch.equal(resumed.left(torch.arange(3)), torch.tensor([0.0, 0.05, 0.5]))
    by_loss = AdaptiveSelection(learned_margin=0.1, base_prob=0.2)
    by_loss.prepare(list(range(4)))
    by_loss.load_state_dict(strategy.state_dict())  # a run that reads the loss leaves the misses aside
    assert by_loss.missed is None and not by_loss.reads_token_misses
    with pytest.raises(ValueError, match="'argmax' or 'loss'"):
        AdaptiveSelection(token_reading="tokens")


def test_unlearned_visits_floor_an_instance_kept_whole_in_that_many_decided_epochs_and_resume_the_count():
    strategy = AdaptiveSelection(learned_margin=0.1, base_prob=0.2, unlearned_visits=2)
    strategy.prepare(list(range(3)))
    strategy.observe(torch.arange(2), torch.tensor([3.0, 1e-4]), step=1)  # one not learned, one learned, one unseen
    means = []
    for epoch in range(3):
        selection = strategy.select(torch.arange(3), epoch, generator(epoch))
        means.append(round(strategy.last_mean_prob, 4))
    # whole (1.0) in the first two decided epochs, then at the floor as the learned one; the unseen one stays whole
    assert means == [round((1.0 + 0.2 + 1.0) / 3, 4)] * 2 + [round((0.2 + 0.2 + 1.0) / 3, 4)]
    assert strategy.unlearned_epochs.tolist() == [3, 0, 0] and selection.weights[0] == pytest.approx(5.0)
    resumed = AdaptiveSelection(learned_margin=0.1, base_prob=0.2, unlearned_visits=2)
    resumed.prepare(list(range(3)))
    resumed.load_state_dict(strategy.state_dict())
    assert resumed.unlearned_epochs.tolist() == [3, 0, 0]
    with pytest.raises(ValueError, match="0 or more"):
        AdaptiveSelection(unlearned_visits=-1)


def test_unlearned_visits_count_only_instances_whose_reading_says_they_are_not_learned():
    # reading token misses, a seen instance whose misses are not read yet has chance 1 for want of a reading
    strategy = AdaptiveSelection(learned_margin=0.1, base_prob=0.2, unlearned_visits=2, token_reading="argmax")
    strategy.prepare(list(range(3)))
    strategy.observe(torch.arange(3), torch.tensor([3.0, 3.0, 3.0]), step=1)
    strategy.observe_token_misses(torch.arange(2), torch.tensor([0.5, 0.0]), step=1)  # instance 2: not read
    strategy.select(torch.arange(3), 0, generator())
    assert strategy.unlearned_epochs.tolist() == [1, 0, 0]


def test_unlearned_visits_floor_nothing_while_most_of_the_set_is_still_being_learned():
    # under label smoothing no instance comes within the margin: every one is still being learned, none an outlier
    strategy = AdaptiveSelection(learned_margin=0.1, base_prob=0.2, unlearned_visits=2)
    strategy.prepare(list(range(3)))
    strategy.observe(torch.arange(3), torch.tensor([3.0, 1e-4, 2.0]), step=1)  # one in three learned
    for epoch in range(4):
        strategy.select(torch.arange(3), epoch, generator(epoch))
        assert strategy.last_mean_prob == pytest.approx((1.0 + 0.2 + 1.0) / 3, abs=1e-4)
    assert strategy.unlearned_epochs.tolist() == [4, 0, 4]  # counted all the same: floored once most are learned
    assert strategy.metrics()["autoassist/learned_fraction"] == pytest.approx(1 / 3, abs=1e-4)
    strategy.observe(torch.tensor([2]), torch.tensor([1e-4]), step=2)  # now two in three: the stale one is floored
    strategy.select(torch.arange(3), 4, generator(4))
    assert strategy.last_mean_prob == pytest.approx(0.2, abs=1e-4)
    # the learned share falls back below a half: the gate stays open, the stale ones (0 and 2, not learned in 4
    # decided epochs) are floored, and 1, not learned for the first time, is whole
    strategy.observe(torch.tensor([1, 2]), torch.tensor([3.0, 3.0]), step=3)
    strategy.select(torch.arange(3), 5, generator(5))
    assert strategy.metrics()["autoassist/learned_fraction"] == 0.0
    assert strategy.last_mean_prob == pytest.approx((0.2 + 1.0 + 0.2) / 3, abs=1e-4)
    resumed = AdaptiveSelection(learned_margin=0.1, base_prob=0.2, unlearned_visits=2)
    resumed.prepare(list(range(3)))
    resumed.load_state_dict(strategy.state_dict())
    assert resumed.unlearned_gate_open
    older = {k: v for k, v in strategy.state_dict().items() if k != "unlearned_gate_open"}
    resumed.load_state_dict(older)  # saved before the gate was kept open: as open as its last decision
    assert not resumed.unlearned_gate_open


def test_retained_visits_skip_an_instance_only_after_a_run_of_learned_visits_and_a_forgotten_one_starts_over():
    strategy = AdaptiveSelection(learned_margin=0.1, base_prob=0.1, retained_visits=2)
    strategy.prepare(list(range(3)))
    learned, forgotten = -math.log(0.99), -math.log(0.5)
    # instance 0: learned twice, then forgotten; 1: learned at every visit; 2: forgotten once in between
    steps = [[learned, learned, learned], [learned, learned, forgotten], [forgotten, learned, learned]]
    for step, losses in enumerate(steps):
        strategy.observe(torch.arange(3), torch.tensor(losses), step=step)
    assert strategy.retained.tolist() == [0, 3, 1]
    selection = strategy.select(torch.arange(3), 0, generator())
    assert torch.allclose(selection.weights, torch.tensor([1.0, 4.0, 1.0]))  # 1 / p: p = 1, 0.25, 1
    strategy.observe(torch.arange(3), torch.tensor([learned, learned, learned]), step=3)
    assert retained_keep_probability(strategy.retained, 2, 0.1).tolist() == pytest.approx([1.0, 0.125, 0.5])

    restored = AdaptiveSelection(retained_visits=2)
    restored.prepare(list(range(3)))
    restored.load_state_dict(strategy.state_dict())
    assert restored.retained.tolist() == [1, 4, 2]
    # off (the default), nothing is counted or saved; a checkpoint without the counts cannot resume with them
    off = AdaptiveSelection()
    off.prepare(list(range(3)))
    off.observe(torch.arange(3), torch.tensor([learned] * 3), step=0)
    assert off.retained is None and "retained" not in off.state_dict()
    with pytest.raises(ValueError, match="autoassist_retained_visits"):
        restored.load_state_dict(off.state_dict())


def test_retained_visits_merge_across_ranks_by_the_clock_of_each_instances_last_visit():
    class TwoRanks:
        num_processes, device = 2, "cpu"

        def __init__(self, other):  # what the other rank gathers, in the order the strategy gathers
            self.theirs = [other.retained, other.memory.step, other.memory.loss, other.memory.step]

        def gather(self, tensor):
            return torch.cat([tensor, self.theirs.pop(0)[None]])

    mine, theirs = AdaptiveSelection(retained_visits=2), AdaptiveSelection(retained_visits=2)
    for strategy in (mine, theirs):
        strategy.prepare(list(range(3)))
    learned = torch.tensor([-math.log(0.99)] * 2)
    for step in range(3):  # instances 0 and 1 on this rank at steps 0-2, 1 and 2 on the other rank at step 5
        mine.observe(torch.tensor([0, 1]), learned, step=step)
    theirs.observe(torch.tensor([1, 2]), learned, step=5)
    mine.synchronize(TwoRanks(theirs))
    assert mine.retained.tolist() == [3, 1, 1] and mine.memory.step.tolist() == [2, 5, 5]


def test_learned_visits_floor_follows_the_planned_epochs_from_num_train_epochs_or_max_steps(tmp_path):
    learned = torch.tensor([-math.log(0.999)] * 4)  # every instance well within the margin
    for options, floor in (
        (dict(num_train_epochs=4), 1.0),  # a short recipe: nothing to spare, everything kept
        (dict(num_train_epochs=20), 0.4),
        (dict(num_train_epochs=200), 0.1),  # never below base_prob
        (dict(max_steps=50, per_device_train_batch_size=2), 0.32),  # 100 instances over 4: 25 epochs
    ):
        args = AutoAssistConfig(
            str(tmp_path), autoassist_learned_visits=8, autoassist_base_prob=0.1, use_cpu=True, report_to="none",
            **options,
        )  # fmt: skip
        strategy = AdaptiveSelection.from_args(args)
        strategy.prepare(list(range(4)))
        strategy.observe(torch.arange(4), learned, step=1)
        assert strategy.floor == pytest.approx(floor)
        assert torch.allclose(strategy.select(torch.arange(4), 0, generator()).weights, torch.tensor(1.0 / floor))
    off = AdaptiveSelection.from_args(
        AutoAssistConfig(str(tmp_path), num_train_epochs=4, autoassist_learned_visits=0, report_to="none")
    )
    off.prepare(list(range(4)))
    assert off.floor == 0.1  # adaptive's own base_prob alone, whatever the length


def test_under_label_smoothing_no_instance_comes_within_the_margin_whatever_the_floor():
    # the smoothed cross entropy is at least the smoothed target's entropy, even for an exactly fitted instance:
    # `adaptive` keeps every instance, so its floor options cannot change a smoothed recipe (benchmarks/runs.py)
    from hf_autoassist.losses import per_instance_loss_terms

    labels = torch.tensor([[0, 1, -100], [1, 1, 0]])
    fitted = torch.nn.functional.one_hot(labels.clamp_min(0), 2).float() * 50.0  # the Boss sure of every target
    loss, terms = per_instance_loss_terms(fitted, labels, label_smoothing=0.1)
    for base_prob, learned_visits in ((0.3, 0.0), (0.1, 8.0), (0.01, 1.0)):
        strategy = AdaptiveSelection(
            base_prob=base_prob, learned_visits=learned_visits, planned_epochs=lambda n: 1000.0
        )  # fmt: skip
        strategy.prepare(list(range(2)))
        strategy.observe(torch.arange(2), loss / terms, step=1)
        assert strategy.floor < 1.0
        selection = strategy.select(torch.arange(2), 0, generator())
        assert selection.keep.all() and torch.equal(selection.weights, torch.ones(2))


def test_adaptive_options_are_checked_with_the_fix():
    with pytest.raises(ValueError, match="autoassist_learned_visits"):
        AdaptiveSelection(learned_visits=-1)
    with pytest.raises(ValueError, match="autoassist_retained_visits"):
        AdaptiveSelection(retained_visits=-1)
    with pytest.raises(ValueError, match="autoassist_learned_margin"):
        AdaptiveSelection(learned_margin=0.0)
    with pytest.raises(ValueError, match="autoassist_base_prob"):
        AdaptiveSelection(base_prob=1.5)
