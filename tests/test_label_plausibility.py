"""The labels plausibility check: neighbours' label agreement in the Boss's own representation, the histogram
decision (nothing flagged on clean labels), and the trainer on real Fashion-MNIST with planted wrong labels: it
decides once, when the third epoch starts, never trains on the flagged images again, and resumes as it ran."""

import json
import math

import numpy as np
import pytest
import torch

from hf_autoassist import AutoAssistConfig, AutoAssistTrainer
from hf_autoassist.plausibility import REPORT_NAME
from hf_autoassist.plausibility.check import DECIDE_AT_EPOCH
from hf_autoassist.plausibility.gallery import GALLERY_NAME
from hf_autoassist.plausibility.labels import label_plausibility, neighbours_for, wrong_label_posterior

from benchmarks.noise import flip_labels
from conftest import tiny_resnet


def blobs(n_per_class=200, classes=4, seed=0):
    """Well separated clusters, one per class."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, 16, generator=generator) * 4
    labels = torch.arange(classes).repeat_interleave(n_per_class)
    return centres[labels] + torch.randn(len(labels), 16, generator=generator), labels


def test_wrong_labels_in_clusters_are_flagged_and_clean_ones_are_not():
    features, labels = blobs()
    clean = label_plausibility(features, labels)
    assert clean.implausible_share < 0.01 and not clean.flagged.any()
    noisy_labels, flipped = flip_labels(labels.numpy(), 4, 0.2, seed=1)
    noisy_labels, wrong = torch.as_tensor(noisy_labels), torch.zeros(len(labels), dtype=torch.bool)
    wrong[torch.as_tensor(flipped)] = True
    found = label_plausibility(features, noisy_labels)
    assert found.implausible_share == pytest.approx(0.2, abs=0.05)
    assert found.flagged[wrong].float().mean() > 0.9 and found.flagged[~wrong].float().mean() < 0.02
    assert found.scores[wrong].mean() < found.scores[~wrong].mean()
    # the neighbours' commonest other label is the true one for the wrong labels found
    assert (found.suggested[found.flagged & wrong] == labels[found.flagged & wrong]).float().mean() > 0.95


def test_the_posterior_never_rises_with_more_agreeing_neighbours():
    generator = torch.Generator().manual_seed(0)
    own = torch.cat([torch.randint(0, 3, (300,), generator=generator), torch.randint(6, 11, (700,), generator=generator)])
    null = torch.randint(0, 4, (1000,), generator=generator)
    share, posterior = wrong_label_posterior(own, null, k=10)
    assert share == pytest.approx(0.3, abs=0.06)
    assert (posterior[1:] <= posterior[:-1]).all() and posterior[10] == 0


def test_the_number_of_neighbours_follows_the_class_size():
    assert neighbours_for(10_000, 10) == 100 and neighbours_for(600, 10) == 15 and neighbours_for(40, 10) == 5


def options(tmp_path, **kwargs):
    defaults = dict(output_dir=str(tmp_path), report_to="none", use_cpu=True, per_device_train_batch_size=64,
                    num_train_epochs=4, learning_rate=3e-3, disable_tqdm=True, seed=0, logging_steps=10,
                    autoassist_strategy="none", autoassist_plausibility="labels", save_strategy="no")  # fmt: skip
    return AutoAssistConfig(**{**defaults, **kwargs})


@pytest.fixture(scope="module")
def noisy_images(fashion_mnist):
    """2,000 Fashion-MNIST training images, 30% of their labels replaced by another class."""
    train = fashion_mnist["train"].select(range(2000))
    labels, flipped = flip_labels(np.asarray(train["labels"]), 10, 0.3, seed=0)
    train = train.remove_columns("labels").add_column("labels", labels.tolist()).with_format("numpy")
    wrong = torch.zeros(len(train), dtype=torch.bool)
    wrong[torch.as_tensor(flipped)] = True
    return train, wrong


class Recording(AutoAssistTrainer):
    def training_step(self, model, inputs, *args, **kwargs):
        epoch = self.selection_run.sampler.epoch
        self.trained.setdefault(epoch, set()).update(inputs["autoassist_index"].tolist())
        return super().training_step(model, inputs, *args, **kwargs)


def train(vision_example, images, tmp_path, resume=None, **kwargs):
    trainer = Recording(model=tiny_resnet(), args=options(tmp_path, **kwargs), train_dataset=images,
                        data_collator=vision_example.collate_images)  # fmt: skip
    trainer.trained = {}
    trainer.train(resume_from_checkpoint=resume)
    return trainer


def test_the_trainer_decides_when_the_third_epoch_starts_and_never_trains_on_flagged_labels(
    tmp_path, vision_example, noisy_images
):
    images, wrong = noisy_images
    trainer = train(vision_example, images, tmp_path, autoassist_write_report=True)
    run = trainer.selection_run
    assert DECIDE_AT_EPOCH == 2 and trainer.kept_fractions[0] == trainer.kept_fractions[1] == 1.0
    flagged = run.flagged
    kept_wrong, kept_right = 1 - flagged[wrong].float().mean(), 1 - flagged[~wrong].float().mean()
    assert kept_wrong < 0.5 * kept_right, (kept_wrong, kept_right)  # the wrong labels are found, most right ones kept
    for epoch in (2, 3):
        assert not trainer.trained[epoch] & set(flagged.nonzero().flatten().tolist())
        assert trainer.kept_fractions[epoch] == pytest.approx(1 - flagged.float().mean().item(), abs=0.001)
    logged = [log["autoassist/flagged_fraction"] for log in trainer.state.log_history if "autoassist/flagged_fraction" in log]
    assert logged[-1] == pytest.approx(flagged.float().mean().item(), abs=1e-4)
    # what the check added to the run: a timing, so in the metrics and the integrations, not the log history
    assert 0 < trainer.autoassist_metrics()["autoassist/plausibility_seconds"] == round(run.plausibility.seconds, 2)
    assert not any("autoassist/plausibility_seconds" in log for log in trainer.state.log_history)
    rows = [json.loads(line) for line in (tmp_path / REPORT_NAME).read_text().splitlines()]
    assert len(rows) == 2000 and rows[0]["flagged"] and rows[0]["posterior"] >= rows[-1]["posterior"]
    given = images["labels"]
    assert all(row["suggested_label"] != given[row["index"]] for row in rows if row["flagged"])
    assert (tmp_path / GALLERY_NAME).is_file()  # the least plausible flagged images, drawn


def test_a_run_resumed_before_or_after_the_decision_flags_and_trains_as_the_uninterrupted_one(
    tmp_path, vision_example, noisy_images
):
    images, _ = noisy_images
    full = train(vision_example, images, tmp_path / "full", save_strategy="epoch")
    for checkpoint in ("checkpoint-32", "checkpoint-85"):  # after epoch 0 (features only), after epoch 2 (flags)
        resumed = train(vision_example, images, tmp_path / checkpoint, resume=str(tmp_path / "full" / checkpoint))
        assert torch.equal(resumed.selection_run.flagged, full.selection_run.flagged)
        assert torch.equal(resumed.selection_run.plausibility.posterior, full.selection_run.plausibility.posterior)
        for (name, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
            assert torch.equal(a, b), name


def test_labels_plausibility_needs_class_ids(tmp_path):
    from datasets import Dataset

    pairs = Dataset.from_dict({"input_ids": [[3, 4], [5]], "labels": [[6], [7, 8]]})
    trainer = AutoAssistTrainer(model=tiny_resnet(), args=options(tmp_path), train_dataset=pairs)
    with pytest.raises(ValueError, match="class ids.*use 'pairs'"):
        trainer.train()


def test_without_recorded_features_no_label_is_flagged():
    """A Boss without a linear head records no features: the check flags nothing instead of failing."""
    from types import SimpleNamespace

    from hf_autoassist.plausibility.check import LabelCheck

    check = LabelCheck(torch.tensor([0, 1, 2, 0, 1, 2]))
    flagged = check.decide(SimpleNamespace(num_processes=1, is_main_process=True), seed=0)
    assert not flagged.any() and check.plausibility.implausible_share == 0.0
    assert torch.equal(check.plausibility.suggested, check.labels) and check.plausibility.seconds >= 0


def test_the_default_checks_labels_and_thins_the_batches_of_what_it_keeps(tmp_path, vision_example, noisy_images):
    """`AutoAssistConfig` with no option set: `auto` is `adaptive` with the labels check on a set of class ids."""
    images, wrong = noisy_images
    args = AutoAssistConfig(output_dir=str(tmp_path), report_to="none", use_cpu=True, per_device_train_batch_size=64,
                            num_train_epochs=4, learning_rate=3e-3, seed=0, disable_tqdm=True, save_strategy="no")  # fmt: skip
    trainer = Recording(model=tiny_resnet(), args=args, train_dataset=images, data_collator=vision_example.collate_images)
    trainer.trained = {}
    trainer.train()
    run = trainer.selection_run
    assert run.strategy_name == "adaptive" and run.label_check is not None and run.sampler.keep_steps
    flagged = run.flagged
    assert flagged is not None and flagged[wrong].float().mean() > 0.5 > flagged[~wrong].float().mean()
    assert not trainer.trained[3] & set(flagged.nonzero().flatten().tolist())  # never trained on again
    # the plain run's batches over what the check left: 32 before the decision, ceil(unflagged / 64) after it
    unflagged = int((~flagged).sum())
    assert trainer.state.global_step == 2 * 32 + 2 * math.ceil(unflagged / 64)
