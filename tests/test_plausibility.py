"""The plausibility check: the calibrated mixture, the cross-fitted pair encoders on real Multi30k pairs (misaligned
ones found, clean data left alone), and the trainer never training on what it flags."""

import json
from types import SimpleNamespace

import pytest
import torch
from datasets import Dataset

from hf_autoassist import AutoAssistSeq2SeqConfig, AutoAssistSeq2SeqTrainer
from hf_autoassist.plausibility import REPORT_NAME, Plausibility, fit_null_mixture, plausibility_for
from hf_autoassist.plausibility import check as check_module
from hf_autoassist.plausibility.check import PlausibilityCheck, resolve_method
from hf_autoassist.plausibility.pairs import cross_fitted_pair_scores, padded_ids
from hf_autoassist.strategies import resolve_strategy

from benchmarks.flags import auc
from conftest import multi30k_token_pairs
from test_translation import pad_pairs, tiny_marian

NUM_PAIRS = 2000


def test_the_mixture_finds_the_share_that_scores_like_the_null_and_none_on_clean_scores():
    generator = torch.Generator().manual_seed(0)
    null = torch.randn(4000, generator=generator) * 0.1
    clean = 0.5 + 0.1 * torch.randn(3000, generator=generator)
    implausible = torch.randn(1000, generator=generator) * 0.1
    fit = fit_null_mixture(torch.cat([clean, implausible]), null)
    assert fit.implausible_share == pytest.approx(0.25, abs=0.02)
    flagged = fit.posterior > 0.5
    assert flagged[3000:].float().mean() > 0.95 and flagged[:3000].float().mean() < 0.02
    clean_only = fit_null_mixture(clean, null)
    assert clean_only.implausible_share < 0.005 and not (clean_only.posterior > 0.5).any()


def test_the_mixture_refuses_too_few_scores():
    with pytest.raises(ValueError, match="at least 2 scores"):
        fit_null_mixture(torch.tensor([0.3]), torch.tensor([0.0, 0.1]))


def test_padded_ids_drop_ignored_labels_and_pad_past_the_largest_id():
    ids, pad = padded_ids([[3, 4, -100], [7]])
    assert pad == 8 and ids.tolist() == [[3, 4], [7, 8]]


@pytest.fixture(scope="module")
def multi30k_pairs():
    """2,000 real Multi30k en-de pairs, and the targets with a quarter of them misaligned."""
    return multi30k_token_pairs(NUM_PAIRS)


def test_cross_fitted_encoders_find_misaligned_multi30k_pairs(multi30k_pairs):
    sources, _, targets, noisy = multi30k_pairs
    pairs = cross_fitted_pair_scores(sources, targets, seed=0)
    assert auc(pairs.scores, noisy) > 0.9
    # never trained on its own pairs, an encoder scores a misaligned pair as it scores a re-paired one
    assert abs(pairs.scores[noisy].mean() - pairs.null_scores.mean()) < 0.05
    fit = fit_null_mixture(pairs.scores, pairs.null_scores)
    assert fit.implausible_share == pytest.approx(0.25, abs=0.05)
    flagged = fit.posterior > 0.5
    assert flagged[noisy].float().mean() > 0.6 and flagged[~noisy].float().mean() < 0.05


def test_encoders_that_do_not_train_on_flagged_pairs_separate_better(multi30k_pairs):
    """The second round of `plausibility_for`: left out of the encoders' training, the misaligned pairs no longer
    blur what an aligned pair looks like (here the planted ones, as a perfect first round would flag them)."""
    sources, _, targets, noisy = multi30k_pairs
    first = cross_fitted_pair_scores(sources, targets, seed=0)
    second = cross_fitted_pair_scores(sources, targets, seed=0, exclude=noisy)
    assert not second.scores.isnan().any()  # the excluded pairs are scored all the same
    assert auc(second.scores, noisy) > auc(first.scores, noisy)
    gap = lambda pairs: pairs.scores[~noisy].mean() - pairs.scores[noisy].mean()  # noqa: E731
    assert gap(second) > gap(first)


def test_the_encoders_training_stops_at_its_bound_of_pairs_seen(monkeypatch):
    """A large corpus costs the check at most `max_pairs_seen` pairs per encoder, the last pass cut short."""
    from hf_autoassist.plausibility import pairs as pairs_module

    batches = []
    loss = pairs_module.contrastive_loss
    monkeypatch.setattr(pairs_module, "contrastive_loss", lambda x, *a: batches.append(len(x)) or loss(x, *a))
    sources = [[i % 7, i % 5 + 7] for i in range(200)]
    targets = [[i % 5, i % 7 + 5] for i in range(200)]
    cross_fitted_pair_scores(sources, targets, folds=2, passes=10, batch_size=16, max_pairs_seen=250)
    assert sum(batches) == 2 * 250  # 100 pairs per encoder: two whole passes and half of a third
    batches.clear()
    cross_fitted_pair_scores(sources, targets, folds=2, passes=10, batch_size=16)
    assert sum(batches) == 2 * 10 * 100  # under the default bound: every pass


def test_clean_pairs_are_not_flagged(multi30k_pairs):
    sources, clean_targets, _, _ = multi30k_pairs
    dataset = Dataset.from_dict({"input_ids": sources, "labels": clean_targets})
    plausibility = plausibility_for(dataset, seed=0)
    assert plausibility.flagged.float().mean() < 0.01 and plausibility.implausible_share < 0.01


def test_the_check_needs_both_sides_of_a_pair():
    with pytest.raises(ValueError, match="`labels`, one token sequence per"):
        plausibility_for(Dataset.from_dict({"input_ids": [[1, 2], [3]], "labels": [0, 1]}))
    with pytest.raises(ValueError, match="autoassist_plausibility_threshold"):
        AutoAssistSeq2SeqConfig("out", autoassist_plausibility="pairs", autoassist_plausibility_threshold=1.0)
    with pytest.raises(ValueError, match="autoassist_plausibility` must be one of"):
        AutoAssistSeq2SeqConfig("out", autoassist_plausibility="tokens")


def test_each_round_after_the_first_trains_without_what_the_round_before_flagged(monkeypatch):
    """`autoassist_plausibility_rounds`: one round of encoders or more, each later one without the flagged pairs, and
    no later round once a round flags nothing (a clean corpus pays for one)."""
    import hf_autoassist.plausibility as plausibility_module
    from hf_autoassist.plausibility.pairs import PairScores

    num_pairs, excluded = 40, []
    misaligned = torch.arange(num_pairs) % 4 == 0
    null = torch.linspace(-0.2, 0.2, num_pairs)

    def scorer(sources, targets, exclude=None, **kwargs):  # misaligned pairs score as the null does
        excluded.append(exclude)
        return PairScores(torch.where(misaligned, null, 0.8 + null / 10), null)

    monkeypatch.setattr(plausibility_module, "cross_fitted_pair_scores", scorer)
    dataset = Dataset.from_dict({"input_ids": [[3, 4]] * num_pairs, "labels": [[5, 6, 1]] * num_pairs})
    for rounds in (1, 2, 3):
        excluded.clear()
        found = plausibility_for(dataset, rounds=rounds)
        assert len(excluded) == rounds and excluded[0] is None
        assert all(torch.equal(exclude, misaligned) for exclude in excluded[1:])
        assert torch.equal(found.flagged, misaligned)
    monkeypatch.setattr(plausibility_module, "cross_fitted_pair_scores",
                        lambda *a, exclude=None, **k: excluded.append(exclude) or PairScores(0.8 + null / 10, null))
    excluded.clear()
    assert not plausibility_for(dataset, rounds=3).flagged.any() and len(excluded) == 1
    with pytest.raises(ValueError, match="autoassist_plausibility_rounds"):
        AutoAssistSeq2SeqConfig("out", autoassist_plausibility="pairs", autoassist_plausibility_rounds=0)


def test_the_report_lists_every_instance_least_plausible_first(tmp_path):
    plausibility = Plausibility(
        "pairs", torch.tensor([0.5, -0.1, 0.4]), torch.tensor([0.01, 0.97, 0.2]), torch.tensor([False, True, False]),
        0.3, 0.5,
    )  # fmt: skip
    with open(plausibility.write(str(tmp_path))) as f:
        rows = [json.loads(line) for line in f]
    assert [row["index"] for row in rows] == [1, 2, 0] and rows[0]["flagged"] and not rows[1]["flagged"]
    assert Dataset.from_json(str(tmp_path / REPORT_NAME)).num_rows == 3


def test_auto_checks_pairs_only_where_it_reads_a_source_and_a_target():
    pairs = Dataset.from_dict({"input_ids": [[3, 4]] * 10, "labels": [[5, 6, 1]] * 10})
    assert resolve_method("auto", "autoassist", True, pairs) == "pairs"
    assert resolve_method("auto", "random", True, pairs) == "pairs"
    assert resolve_method("auto", "none", True, pairs) is None  # the plain run stays the plain run
    assert resolve_method("auto", "autoassist", False, pairs) is None  # a causal LM's labels repeat its inputs
    speech = Dataset.from_dict({"input_features": [[0.1, 0.2]] * 10, "labels": [[5, 6, 1]] * 10})
    assert resolve_method("auto", "autoassist", True, speech) is None
    classes = Dataset.from_dict({"input_ids": [[3, 4]] * 10, "labels": [0, 1] * 5})
    assert resolve_method("auto", "autoassist", True, classes) is None
    assert resolve_method("auto", "autoassist", True, pairs.select(range(9))) is None  # 5 folds of 2 pairs
    assert resolve_method("none", "autoassist", True, pairs) is None
    assert resolve_method(None, "autoassist", True, pairs) is None
    assert resolve_method("pairs", "none", False, pairs) == "pairs"  # asked for, it is made
    assert AutoAssistSeq2SeqConfig("out").autoassist_plausibility == "auto"


def test_auto_checks_class_labels_on_a_set_of_class_ids_that_fits(monkeypatch):
    from hf_autoassist.plausibility import check

    classes = Dataset.from_dict({"pixel_values": [[0.1, 0.2]] * 10, "labels": [0, 1] * 5})
    assert resolve_method("auto", "adaptive", False, classes) == "labels"
    assert resolve_method("auto", "none", False, classes) is None  # the plain run stays the plain run
    one_class = Dataset.from_dict({"pixel_values": [[0.1, 0.2]] * 10, "labels": [3] * 10})
    regression = Dataset.from_dict({"pixel_values": [[0.1, 0.2]] * 10, "labels": [0.5, 1.5] * 5})
    assert resolve_method("auto", "adaptive", False, one_class) is None
    assert resolve_method("auto", "adaptive", False, regression) is None
    monkeypatch.setattr(check, "AUTO_LABELS_MAX_INSTANCES", 9)  # a set whose features would not fit: asked by name
    assert resolve_method("auto", "adaptive", False, classes) is None
    assert resolve_method("labels", "adaptive", False, classes) == "labels"
    AutoAssistSeq2SeqConfig("out", autoassist_plausibility="none")


def test_auto_drops_nothing_when_the_check_finds_most_pairs_implausible(monkeypatch):
    num_pairs = 20
    most = torch.arange(num_pairs) < 15  # 75% "misaligned": an encoder that did not learn, far likelier
    found = Plausibility("pairs", torch.zeros(num_pairs), most.float(), most, 0.75, 0.5, seconds=1.0)
    monkeypatch.setattr(check_module, "plausibility_for", lambda *args, **kwargs: found)
    dataset = Dataset.from_dict({"input_ids": [[3, 4]] * num_pairs, "labels": [[5, 6, 1]] * num_pairs})
    one_process = SimpleNamespace(is_main_process=True, num_processes=1, device="cpu")
    plausibility, flagged = PlausibilityCheck("auto").resolved("autoassist", True, dataset).run(dataset, 0, one_process)
    assert not flagged.any() and not plausibility.flagged.any()
    assert torch.equal(plausibility.posterior, most.float())  # the report still shows what the check found
    _, flagged = PlausibilityCheck("pairs").resolved("autoassist", True, dataset).run(dataset, 0, one_process)
    assert torch.equal(flagged, most)  # asked for by name, the check acts on what it found


def test_auto_is_adaptive_beside_any_check_and_the_assistant_only_for_irreducible_losses():
    assert resolve_strategy("auto", "pairs") == "adaptive"
    assert resolve_strategy("auto", None) == "adaptive"  # images, classes, a causal LM, a small set
    assert resolve_strategy("auto", "labels") == "adaptive"
    assert resolve_strategy("auto", "pairs", reads_irreducible=True) == "autoassist"  # only the Assistant reads them
    assert resolve_strategy("auto", None, has_assistant=True) == "autoassist"  # the user's own Assistant is used
    assert all(resolve_strategy(name, "pairs") == name for name in ("autoassist", "random", "infobatch", "none"))
    assert AutoAssistSeq2SeqConfig("out").autoassist_strategy == "auto"
    assert AutoAssistSeq2SeqConfig("out", autoassist_label="reducible").needs_irreducible_losses


@pytest.mark.parametrize("strategy", ["none", "autoassist", "auto"])
def test_the_trainer_never_trains_on_flagged_pairs(tmp_path, multi30k_pairs, strategy):
    sources, _, targets, _ = multi30k_pairs
    keep = 1000  # pairs; 0 pads, 1 ends a sequence

    def shifted(rows):
        return [[t + 2 for t in row[:30]] + [1] for row in rows[:keep]]  # within 32 positions

    train = Dataset.from_dict({"input_ids": shifted(sources), "labels": shifted(targets)})
    args = AutoAssistSeq2SeqConfig(
        str(tmp_path), report_to="none", use_cpu=True, num_train_epochs=2, per_device_train_batch_size=32,
        save_strategy="no", autoassist_write_report=True,
        # the default ("auto") and a selecting run check pairs by default; the plain run only when asked
        **({"autoassist_strategy": strategy} if strategy != "auto" else {}),
        **({"autoassist_plausibility": "pairs"} if strategy == "none" else {}),
    )  # fmt: skip
    trainer = AutoAssistSeq2SeqTrainer(model=tiny_marian(vocab=4002), args=args, train_dataset=train, data_collator=pad_pairs)
    trainer.train()
    run = trainer.selection_run
    assert run.strategy_name == {"auto": "adaptive"}.get(strategy, strategy)
    flagged = run.plausibility.flagged
    kept = run.sampler.kept
    assert flagged.any() and not flagged[kept].any()
    assert trainer.kept_fractions[0] == pytest.approx(1 - flagged.float().mean().item(), abs=1e-4)
    if strategy != "autoassist":  # every pair the check leaves, every epoch
        assert trainer.kept_fractions[1] == trainer.kept_fractions[0] and run.assistant is None
    with open(tmp_path / REPORT_NAME) as f:
        rows = [json.loads(line) for line in f]
    assert len(rows) == keep and sum(row["flagged"] for row in rows) == int(flagged.sum())


def test_a_checkpoint_written_without_the_check_names_the_option_that_resumes_it(tmp_path, multi30k_pairs):
    sources, _, targets, _ = multi30k_pairs

    def shifted(rows):
        return [[t + 2 for t in row[:30]] + [1] for row in rows[:1000]]  # enough pairs to flag some

    train = Dataset.from_dict({"input_ids": shifted(sources), "labels": shifted(targets)})

    def trainer(**options):
        args = AutoAssistSeq2SeqConfig(
            str(tmp_path), report_to="none", use_cpu=True, num_train_epochs=2, per_device_train_batch_size=64,
            save_strategy="steps", save_steps=12, **options,
        )  # fmt: skip
        model = tiny_marian(vocab=4002)
        return AutoAssistSeq2SeqTrainer(model=model, args=args, train_dataset=train, data_collator=pad_pairs)

    trainer(autoassist_plausibility="none").train()  # as before 'auto': no check, every pair in each pass
    checkpoint = tmp_path / "checkpoint-12"
    with pytest.raises(ValueError, match="autoassist_plausibility='none'"):
        trainer().train(resume_from_checkpoint=str(checkpoint))
    resumed = trainer(autoassist_plausibility="none")
    resumed.train(resume_from_checkpoint=str(checkpoint))
    assert resumed.selection_run.plausibility is None and resumed.state.global_step > 12


def test_flag_quality_scores_the_flags_against_the_planted_noise():
    from benchmarks.flags import flag_quality

    scores = torch.tensor([0.1, 0.2, 0.9, float("nan"), 0.8, 0.3])  # the unscored one counts as plausible
    flagged = torch.tensor([True, True, False, False, False, True])
    plausibility = Plausibility("pairs", scores, 1 - scores.nan_to_num(1.0), flagged, 0.5, 0.5)
    quality = flag_quality(plausibility, [0, 1, 2])
    expected = {"precision": 2 / 3, "recall": 2 / 3, "flagged_noisy": 2 / 3, "flagged_clean": 1 / 3}
    assert {key: quality[key] for key in expected} == pytest.approx(expected, abs=1e-4)
    assert quality["auc"] == pytest.approx(7 / 9, abs=1e-4)  # 0.1 and 0.2 below all three, 0.9 below the unscored
