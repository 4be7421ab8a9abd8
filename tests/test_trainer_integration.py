"""A small ResNet trained on real Fashion-MNIST images with AutoAssistTrainer (about 10 s each on 2 CPU cores)."""

import logging
import math

import numpy as np
import pytest

from hf_autoassist import AutoAssistConfig, AutoAssistTrainer

from conftest import tiny_resnet

pytestmark = pytest.mark.slow

AUTOASSIST_KEYS = [
    "autoassist/kept_fraction",
    "autoassist/assistant_accuracy",
    "autoassist/instances_seen",
    "autoassist/instances_backpropagated",
    "autoassist/instances_trained",
    "autoassist/queue_dropped",
]


def make_trainer(tmp_path, vision_example, fashion_mnist, train_size=2000, **kwargs):
    train = fashion_mnist["train"].shuffle(seed=0).select(range(train_size)).with_format("numpy")
    test = fashion_mnist["test"].select(range(1000)).with_format("numpy")
    args = dict(
        output_dir=str(tmp_path),
        report_to="none",
        use_cpu=True,
        per_device_train_batch_size=64,
        learning_rate=3e-3,
        num_train_epochs=3,
        logging_steps=5,
        save_strategy="no",
        remove_unused_columns=False,
        disable_tqdm=True,
        seed=0,
        autoassist_strategy="autoassist",  # the Assistant's shrinking; the default (`adaptive`) is tested by name
        autoassist_plausibility="none",  # the labels check ("auto" on class ids) is tested on its own
    )
    return AutoAssistTrainer(
        model=tiny_resnet(),
        args=AutoAssistConfig(**{**args, **kwargs}),
        train_dataset=train,
        eval_dataset=test,
        data_collator=vision_example.collate_images,
        compute_metrics=vision_example.accuracy,
    )


def test_autoassist_shrinks_epochs_and_still_learns(tmp_path, vision_example, fashion_mnist):
    trainer = make_trainer(tmp_path, vision_example, fashion_mnist)
    kept_per_epoch = []
    original_run_epoch = trainer._run_epoch

    def recording_run_epoch(**kwargs):
        result = original_run_epoch(**kwargs)
        kept_per_epoch.append(len(trainer.selection_run.sampler.kept))  # the selection of the epoch just run
        return result

    trainer._run_epoch = recording_run_epoch
    trainer.train()

    assert len(kept_per_epoch) == 3
    assert kept_per_epoch[0] == 2000  # warmup keeps everything
    assert all(kept < 2000 for kept in kept_per_epoch[1:])

    train_logs = [log for log in trainer.state.log_history if "loss" in log]
    assert all(key in train_logs[-1] for key in AUTOASSIST_KEYS)
    # timings differ between two runs of one seed: in the metrics (and the integrations), not the log history
    assert trainer.autoassist_metrics()["autoassist/assistant_seconds"] > 0
    assert not any(key.endswith("_seconds") for log in train_logs for key in log if key.startswith("autoassist/"))
    assert np.mean([log["loss"] for log in train_logs[-3:]]) < np.mean([log["loss"] for log in train_logs[:3]])
    # the Boss back-propagated exactly the kept instances, and each one's loss reached the Assistant
    final = trainer.state.log_history[-1]
    assert final["autoassist/instances_backpropagated"] == final["autoassist/instances_seen"] == sum(kept_per_epoch)
    trainer.selection_run.worker.flush()
    assert trainer.selection_run.worker.trained + trainer.selection_run.worker.dropped == sum(kept_per_epoch)
    accuracy = trainer.evaluate()["eval_accuracy"]
    assert accuracy > 0.5, accuracy  # chance is 0.1


@pytest.mark.parametrize("strategy", ["autoassist", "random", "infobatch"])
def test_schedule_and_progress_end_together_when_epochs_shrink(tmp_path, vision_example, fashion_mnist, strategy):
    # infobatch keeps everything in its last 12.5% of epochs: 3 epochs leave it one shrunk epoch, epoch 1 of 0..2
    trainer = make_trainer(
        tmp_path, vision_example, fashion_mnist, gradient_accumulation_steps=2, autoassist_strategy=strategy
    )
    result = trainer.train()
    # the plan was re-made from the shrunk epochs: every planned step ran and the linear schedule reached 0
    assert trainer.state.global_step == trainer.state.max_steps == result.global_step
    assert trainer.state.global_step < 3 * math.ceil(math.ceil(2000 / 64) / 2)
    assert trainer.lr_scheduler.get_last_lr()[0] == pytest.approx(0.0, abs=1e-12)
    assert trainer.state.epoch == pytest.approx(3.0)


def test_adaptive_keeps_the_plain_runs_steps_and_thins_what_the_boss_has_learned(tmp_path, vision_example, fashion_mnist):
    # a wide margin, so that three epochs of a tiny ResNet already thin their batches (the floor at base_prob: the
    # default's floor follows the recipe's length and keeps everything on three epochs)
    trainer = make_trainer(
        tmp_path, vision_example, fashion_mnist, autoassist_strategy="adaptive", autoassist_learned_margin=1.0,
        autoassist_learned_visits=0, autoassist_thinned_batch_multiple=8,
    )
    sizes, original_step = [], trainer.training_step

    def recording_step(model, inputs, *args, **kwargs):
        sizes.append(len(inputs["labels"]))
        return original_step(model, inputs, *args, **kwargs)

    trainer.training_step = recording_step
    trainer.train()
    # with a batch multiple, thinned batches of a few sizes only, topped up at weight 0 with instances of their slice
    assert len(set(sizes)) > 2 and all(size % 8 == 0 for size in sizes)
    padding = trainer.selection_run.sampler.padding
    assert len(padding) and (trainer.selection_run.epoch_selection.loss_weights[padding] == 0).all()
    # the plain run's steps and LR schedule: every epoch has its full pass's batches
    assert trainer.state.global_step == trainer.state.max_steps == 3 * math.ceil(2000 / 64)
    assert trainer.lr_scheduler.get_last_lr()[0] == pytest.approx(0.0, abs=1e-12)
    kept = list(trainer.kept_fractions.values())
    assert kept[0] == 1.0 and kept[-1] < 0.9  # the warmup keeps everything, then the learned are thinned
    # the kept instances, and fewer than 8 more per batch to top it up
    topped_up = trainer.selection_run.instances_backpropagated - 2000 * sum(kept)
    assert -3 <= topped_up < 7 * trainer.state.global_step
    assert trainer.selection_run.epoch_selection.loss_weights.max() > 1.0  # the kept learned ones weigh 1 / p
    # every seen instance is within a margin of 1: the logs say all of the set is learned
    key = "autoassist/learned_fraction"
    learned = [log[key] for log in trainer.state.log_history if key in log]
    assert learned and learned[-1] == 1.0
    assert trainer.evaluate()["eval_accuracy"] > 0.5  # chance is 0.1


def test_max_steps_is_honoured_exactly_across_shrunk_epochs(tmp_path, vision_example, fashion_mnist):
    trainer = make_trainer(tmp_path, vision_example, fashion_mnist, train_size=640, max_steps=40, num_train_epochs=1)
    trainer.train()
    # 10 batches per full epoch, fewer after warmup: 40 steps take more than 4 epochs
    assert trainer.state.global_step == 40
    assert trainer.state.epoch > 4
    assert trainer.lr_scheduler.get_last_lr()[0] == pytest.approx(0.0, abs=1e-12)


def test_strategy_none_keeps_every_instance_through_the_same_path(tmp_path, vision_example, fashion_mnist):
    trainer = make_trainer(tmp_path, vision_example, fashion_mnist, autoassist_strategy="none", num_train_epochs=2)
    trainer.train()
    assert trainer.selection_run.sampler.kept_fraction == 1.0
    assert trainer.selection_run.worker is None
    assert trainer.state.global_step == 2 * math.ceil(2000 / 64)


def test_eval_save_and_best_model_strategies_keep_working(tmp_path, vision_example, fashion_mnist, caplog):
    import transformers

    trainer = make_trainer(
        tmp_path, vision_example, fashion_mnist, train_size=1000, gradient_accumulation_steps=2,
        eval_strategy="steps", eval_steps=5, save_strategy="steps", save_steps=5, load_best_model_at_end=True,
        metric_for_best_model="accuracy", save_total_limit=2,
    )  # fmt: skip
    transformers.utils.logging.enable_propagation()
    try:
        with caplog.at_level(logging.WARNING):
            trainer.train()
    finally:
        transformers.utils.logging.disable_propagation()
    evals = [log for log in trainer.state.log_history if "eval_accuracy" in log]
    # every 5 steps, and at the last step (the Trainer evaluates and saves at the end of training too)
    last = trainer.state.global_step
    assert [log["step"] for log in evals] == sorted(set(range(5, last + 1, 5)) | {last})
    best = max(evals, key=lambda log: log["eval_accuracy"])
    assert trainer.state.best_model_checkpoint.endswith(f"checkpoint-{best['step']}")
    assert trainer.evaluate()["eval_accuracy"] == pytest.approx(best["eval_accuracy"])
    # a normal run says nothing about epochs being shorter than planned
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and "step" in r.getMessage().lower()]


def test_infobatch_rescales_the_kept_below_mean_losses_and_finishes_on_full_data(tmp_path, vision_example, fashion_mnist):
    trainer = make_trainer(
        tmp_path, vision_example, fashion_mnist, train_size=640, num_train_epochs=8, autoassist_strategy="infobatch"
    )
    weights_per_epoch = {}
    original_run_epoch = trainer._run_epoch

    def recording_run_epoch(**kwargs):
        result = original_run_epoch(**kwargs)
        weights = trainer.selection_run.epoch_selection.loss_weights
        weights_per_epoch[kwargs["epoch"]] = None if weights is None else sorted(set(weights.tolist()))
        return result

    trainer._run_epoch = recording_run_epoch
    trainer.train()
    fractions = [trainer.kept_fractions[e] for e in range(8)]
    # warmup epoch 0 and the last 12.5% (epoch 7) keep everything, unweighted; the others prune and rescale by 2
    assert fractions[0] == fractions[7] == 1.0 and weights_per_epoch[0] is None and weights_per_epoch[7] is None
    for epoch in range(1, 7):
        assert 0.5 < fractions[epoch] < 1.0, fractions
        assert weights_per_epoch[epoch] == [1.0, 2.0]
    assert trainer.state.global_step == trainer.state.max_steps
    assert trainer.lr_scheduler.get_last_lr()[0] == pytest.approx(0.0, abs=1e-12)


def test_reweighted_autoassist_changes_the_loss_only_when_asked(tmp_path, vision_example, fashion_mnist):
    plain = make_trainer(tmp_path / "plain", vision_example, fashion_mnist, train_size=640, autoassist_synchronous=True)
    plain.train()
    weighted = make_trainer(
        tmp_path / "weighted", vision_example, fashion_mnist, train_size=640, autoassist_synchronous=True,
        autoassist_reweight=True,
    )  # fmt: skip
    weighted.train()
    assert plain.selection_run.epoch_selection.loss_weights is None  # reweighting off: the Trainer's loss is untouched
    weights = weighted.selection_run.epoch_selection.loss_weights
    assert weights is not None and weights.min() >= 1.0 and weights.max() > 1.0  # 1/p, with p <= 1
    # the same selections (the Assistant saw the same losses in warmup), different losses after it
    assert plain.kept_fractions[1] == weighted.kept_fractions[1]
    losses = [[log["loss"] for log in t.state.log_history if "loss" in log] for t in (plain, weighted)]
    assert losses[0][:2] == losses[1][:2] and losses[0][-1] != losses[1][-1]


def test_diagnostics_per_label_are_kept_and_written_at_the_end(tmp_path, vision_example, fashion_mnist):
    import json

    trainer = make_trainer(tmp_path, vision_example, fashion_mnist, train_size=640, autoassist_confidence="skill",
                           autoassist_write_report=True)  # fmt: skip
    trainer.train()
    history = json.loads((tmp_path / "autoassist_diagnostics.json").read_text())
    assert history == trainer.autoassist_history
    assert (tmp_path / "autoassist_diagnostics.png").stat().st_size > 5_000
    assert [record["epoch"] for record in history] == [0, 1, 2]
    assert history[0]["kept_by_group"] == {f"label {i}": 1.0 for i in range(10)}  # warmup keeps every label
    for record in history[1:]:
        assert {"assistant_accuracy", "assistant_skill", "positive_rate"} <= set(record)
        # the overall kept fraction is the label-weighted mean of the per-label ones
        counts = np.bincount(trainer.train_dataset["labels"], minlength=10)
        weighted = sum(record["kept_by_group"][f"label {i}"] * counts[i] for i in range(10)) / counts.sum()
        assert weighted == pytest.approx(record["kept_fraction"], abs=1e-3)
    # the console keeps a handful of keys: the per-label fractions are in the report (and TensorBoard), not here
    last_log = [log for log in trainer.state.log_history if "loss" in log][-1]
    assert "autoassist/assistant_skill" in last_log and "autoassist/kept_fraction" in last_log
    assert not [key for key in last_log if key.startswith("autoassist/kept_fraction/")]
