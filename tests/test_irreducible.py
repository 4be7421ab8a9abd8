"""Irreducible losses (`autoassist_label="reducible"`): cross-fitted out-of-sample losses that tell a wrong label
from a hard one, their cache and their place in checkpoints."""

import logging

import numpy as np
import pytest
import torch
from transformers import TrainerCallback

from hf_autoassist import AutoAssistConfig, AutoAssistTrainer
from hf_autoassist.irreducible import IrreducibleLossModel, fold_ids

from benchmarks.noise import flip_labels
from conftest import tiny_resnet

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def noisy_slice(fashion_mnist):
    """800 Fashion-MNIST images with 30% of the labels replaced by another class."""
    train = fashion_mnist["train"].select(range(800))
    labels, noisy = flip_labels(np.asarray(train["labels"]), num_classes=10, fraction=0.3, seed=0)
    train = train.remove_columns("labels").add_column("labels", labels.tolist()).with_format("numpy")
    return train, noisy


def make_trainer(tmp_path, vision_example, train, **options):
    defaults = dict(
        output_dir=str(tmp_path), report_to="none", use_cpu=True, per_device_train_batch_size=32, num_train_epochs=2,
        learning_rate=3e-3, save_strategy="no", disable_tqdm=True, seed=0, autoassist_synchronous=True,
        autoassist_label="reducible", autoassist_irreducible_epochs=3,
    )  # fmt: skip
    args = AutoAssistConfig(**{**defaults, **options})
    return AutoAssistTrainer(model=tiny_resnet(), args=args, train_dataset=train, data_collator=vision_example.collate_images)


def test_fold_ids_cover_every_instance_once():
    ids = fold_ids(101, 4, seed=3)
    assert ids.shape == (101,) and set(ids.tolist()) == {0, 1, 2, 3}
    assert ids.bincount().max() - ids.bincount().min() <= 1
    assert torch.equal(ids, fold_ids(101, 4, seed=3)) and not torch.equal(ids, fold_ids(101, 4, seed=4))


def test_irreducible_losses_tell_a_wrong_label_from_a_right_one(tmp_path, vision_example, noisy_slice):
    train, noisy = noisy_slice
    trainer = make_trainer(tmp_path, vision_example, train)
    model = IrreducibleLossModel(trainer.args, trainer.model, trainer.loss_reader.is_causal_lm)
    result = model.compute(train, vision_example.collate_images)
    assert result.losses.shape == (800,) and torch.isfinite(result.losses).all() and result.folds == 2
    is_noisy = torch.zeros(800, dtype=torch.bool)
    is_noisy[torch.as_tensor(noisy)] = True
    # out of sample, a wrong label costs far more than a right one: ranked by irreducible loss, most wrong labels
    # come first (the area under the ROC curve)
    order = result.losses.argsort(descending=True)
    ranks = torch.empty(800)
    ranks[order] = torch.arange(800, 0, -1).float()
    auc = (ranks[is_noisy].mean() - (is_noisy.sum() + 1) / 2) / (~is_noisy).sum()
    assert auc > 0.75, float(auc)
    # the held-out accuracy is against the noisy labels: near 70% of the clean accuracy at best
    assert 0.2 < result.heldout_accuracy < 0.75
    assert result.heldout_loss == pytest.approx(float(result.losses.mean()), rel=1e-3)
    # less likely than a uniform guess over the 10 classes: mostly the wrong labels
    implausible = result.implausible()
    assert result.num_classes == 10 and implausible.shape == (800,)
    wrong, right = float(implausible[is_noisy].float().mean()), float(implausible[~is_noisy].float().mean())
    assert wrong > 0.4 and right < 0.2 and wrong > 3 * right, (wrong, right)
    assert result.summary()["implausible_fraction"] == pytest.approx(float(implausible.float().mean()), abs=1e-4)
    # the Boss is left as it was: its copies trained
    untouched = tiny_resnet()
    for name, weight in trainer.model.state_dict().items():
        torch.testing.assert_close(weight, untouched.state_dict()[name])


def test_reducible_run_caches_its_irreducible_losses_and_checkpoints_them(tmp_path, vision_example, noisy_slice, caplog, monkeypatch):
    train, _ = noisy_slice
    train = train.select(range(320))
    cache = tmp_path / "cache" / "irreducible.pt"
    first = make_trainer(tmp_path / "first", vision_example, train, autoassist_irreducible_cache=str(cache),
                         autoassist_irreducible_epochs=1, save_strategy="epoch")  # fmt: skip
    first.train()
    written = first.selection_run.irreducible
    assert cache.is_file() and written.source == "computed" and written.seconds > 0
    torch.testing.assert_close(first.selection_run.assistant.irreducible, first.selection_run.irreducible.losses)

    computed = []
    original = IrreducibleLossModel.compute
    monkeypatch.setattr(IrreducibleLossModel, "compute", lambda self, *a: computed.append(1) or original(self, *a))
    # the losses do not depend on the label that reads them: a "learnable" run reuses them
    second = make_trainer(tmp_path / "second", vision_example, train, autoassist_irreducible_cache=str(cache),
                          autoassist_irreducible_epochs=1, autoassist_label="learnable")  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="hf_autoassist"):
        second.train()
    assert not computed and "read from" in caplog.text and second.selection_run.irreducible.source == str(cache)
    assert second.selection_run.worker.label == "learnable" and second.selection_run.worker.trained > 0
    torch.testing.assert_close(second.selection_run.irreducible.losses, first.selection_run.irreducible.losses)

    # other settings: the cache does not apply, the losses are computed again
    third = make_trainer(tmp_path / "third", vision_example, train, autoassist_irreducible_cache=str(cache),
                         autoassist_irreducible_epochs=2, max_steps=1)  # fmt: skip
    third.train()
    assert computed == [1] and third.selection_run.irreducible.epochs == 2

    # a resumed run takes them from its checkpoint
    checkpoint = sorted((tmp_path / "first").glob("checkpoint-*"))[0]
    resumed = make_trainer(tmp_path / "first", vision_example, train, autoassist_irreducible_epochs=1, save_strategy="epoch")
    resumed.train(resume_from_checkpoint=str(checkpoint))
    assert computed == [1] and resumed.selection_run.irreducible.source == str(checkpoint)
    torch.testing.assert_close(resumed.selection_run.irreducible.losses, first.selection_run.irreducible.losses)


def test_implausible_instances_are_kept_with_their_own_probability(tmp_path, vision_example, noisy_slice):
    # whatever the Assistant says: the loss label would keep the wrong labels (high loss) first
    train, noisy = noisy_slice
    trainer = make_trainer(tmp_path, vision_example, train, autoassist_label="batch_median", num_train_epochs=3,
                           autoassist_implausible_keep_prob=0.2, autoassist_base_prob=0.3)  # fmt: skip
    kept_per_epoch = []

    class KeptPerEpoch(TrainerCallback):
        def on_epoch_end(self, args, state, control, **kwargs):
            kept_per_epoch.append(trainer.selection_run.sampler.kept.clone())

    trainer.add_callback(KeptPerEpoch())
    trainer.train()
    implausible = trainer.selection_run.irreducible.implausible()
    assert torch.equal(trainer.selection_run.strategy.implausible, implausible)
    assert 0.1 < float(implausible.float().mean()) < 0.5
    assert len(kept_per_epoch) == 3 and len(kept_per_epoch[0]) == 800  # the warmup keeps everything
    for kept in kept_per_epoch[1:]:  # then the flagged ones are drawn with 0.2, below the others' floor
        mask = torch.zeros(800, dtype=torch.bool)
        mask[kept] = True
        flagged, others = float(mask[implausible].float().mean()), float(mask[~implausible].float().mean())
        assert 0.1 < flagged < 0.3 and others > flagged + 0.2, (flagged, others)


def test_skipping_implausible_labels_needs_class_ids():
    from hf_autoassist.irreducible import IrreducibleLosses
    from hf_autoassist.strategies import build_strategy

    args = AutoAssistConfig(output_dir="unused", report_to="none", use_cpu=True, autoassist_implausible_keep_prob=0.0)
    assert args.needs_irreducible_losses
    sequences = IrreducibleLosses(torch.ones(4), folds=2, epochs=1.0, heldout_loss=1.0, heldout_accuracy=0.1,
                                  instances=4, seconds=0.1, fingerprint="f", num_classes=None)  # fmt: skip
    with pytest.raises(ValueError, match="needs a classification set"):
        build_strategy(args, "autoassist").prepare(None, irreducible=sequences)


def test_a_cache_written_before_the_number_of_classes_was_kept_is_computed_again(tmp_path, caplog):
    from hf_autoassist.irreducible import load_cached

    path = tmp_path / "old.pt"
    torch.save({"losses": torch.ones(4), "folds": 2, "epochs": 1.0, "heldout_loss": 1.0, "heldout_accuracy": 0.5,
                "instances": 4, "seconds": 0.1, "fingerprint": "f"}, path)  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="hf_autoassist"):
        assert load_cached(str(path), "f") is None
    assert "older version" in caplog.text


@pytest.mark.parametrize(
    "options,message",
    [({"autoassist_irreducible_fraction": 0.7}, "leave out at least half"),
     ({"autoassist_irreducible_epochs": 0}, "must be > 0"),
     ({"autoassist_implausible_keep_prob": 1.5}, "0 drops it"),
     ({"autoassist_label": "reducible", "autoassist_assistant_memory": False}, "autoassist_assistant_memory=True"),
     ({"autoassist_label": "learnable", "autoassist_assistant_memory": False}, "autoassist_assistant_memory=True")],
)  # fmt: skip
def test_bad_irreducible_options_name_the_fix(tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        AutoAssistConfig(output_dir=str(tmp_path), **options)
