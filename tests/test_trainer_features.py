"""The Trainer features users already turn on, each under AutoAssistTrainer with a tiny ResNet on 512 Fashion-MNIST
images (seconds per case). Every case also checks what AutoAssist must keep true: epochs after the warmup shrink,
and the run ends on its planned step."""

import logging
import math

import numpy as np
import pytest
import torch
import transformers
from transformers import EarlyStoppingCallback, Trainer, TrainingArguments

from hf_autoassist import AutoAssistConfig, AutoAssistTrainer

from conftest import tiny_resnet

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def images(fashion_mnist):
    train = fashion_mnist["train"].shuffle(seed=0).select(range(512)).with_format("numpy")
    return train, fashion_mnist["test"].select(range(256)).with_format("numpy")


def make_trainer(tmp_path, vision_example, images, trainer_class=AutoAssistTrainer, callbacks=None, **kwargs):
    train, test = images
    options = dict(output_dir=str(tmp_path), report_to="none", use_cpu=True, per_device_train_batch_size=32,
                   learning_rate=3e-3, num_train_epochs=3, logging_steps=4, save_strategy="no",
                   remove_unused_columns=False, disable_tqdm=True, seed=0, autoassist_synchronous=True,
                   autoassist_strategy="autoassist")  # the Assistant shrinks epochs  # fmt: skip
    options.update(kwargs)
    if trainer_class is Trainer:
        options = {k: v for k, v in options.items() if not k.startswith("autoassist_")}
    config_class = AutoAssistConfig if trainer_class is AutoAssistTrainer else TrainingArguments
    return trainer_class(
        model=tiny_resnet(), args=config_class(**options), train_dataset=train, eval_dataset=test,
        data_collator=vision_example.collate_images, compute_metrics=vision_example.accuracy, callbacks=callbacks,
    )  # fmt: skip


def train_and_check(trainer):
    trainer.train()
    kept = trainer.kept_fractions
    assert kept[0] == 1.0 and min(kept.values()) < 1.0, kept
    assert trainer.state.global_step == trainer.state.max_steps
    return trainer


def test_gradient_accumulation_counts_optimizer_steps_from_the_shrunk_epochs(tmp_path, vision_example, images):
    trainer = train_and_check(make_trainer(tmp_path, vision_example, images, gradient_accumulation_steps=3))
    batches = [math.ceil(kept * 512 / 32) for kept in trainer.kept_fractions.values()]
    assert trainer.state.global_step == sum(math.ceil(b / 3) for b in batches)


def test_bf16_autocast_on_cpu(tmp_path, vision_example, images):
    trainer = train_and_check(make_trainer(tmp_path, vision_example, images, bf16=True))
    assert trainer.accelerator.mixed_precision == "bf16"
    assert all(np.isfinite(log["loss"]) for log in trainer.state.log_history if "loss" in log)


def test_length_grouping_is_ignored_with_a_warning(tmp_path, vision_example, images, caplog):
    transformers.utils.logging.enable_propagation()
    try:
        with caplog.at_level(logging.WARNING):
            train_and_check(make_trainer(tmp_path, vision_example, images, train_sampling_strategy="group_by_length"))
    finally:
        transformers.utils.logging.disable_propagation()
    assert any("train_sampling_strategy='group_by_length'` is ignored" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("remove_unused_columns", [True, False])
def test_remove_unused_columns_either_way(tmp_path, vision_example, images, remove_unused_columns):
    train, test = images
    train = train.add_column("note", [f"image {i}" for i in range(len(train))])  # not a model input
    seen_columns = set()

    def collate(examples):
        seen_columns.update(examples[0])
        return vision_example.collate_images(examples)

    trainer = make_trainer(tmp_path, vision_example, (train, test), remove_unused_columns=remove_unused_columns)
    trainer.data_collator = collate
    train_and_check(trainer)
    assert ("note" in seen_columns) is (not remove_unused_columns)
    assert "pixel_values" in seen_columns


def test_eval_and_save_by_epoch_fall_on_the_shrunk_epochs_ends(tmp_path, vision_example, images):
    trainer = train_and_check(
        make_trainer(tmp_path, vision_example, images, eval_strategy="epoch", save_strategy="epoch")
    )
    ends = np.cumsum([math.ceil(kept * 512 / 32) for kept in trainer.kept_fractions.values()]).tolist()
    assert [log["step"] for log in trainer.state.log_history if "eval_accuracy" in log] == ends
    assert sorted(int(p.name.split("-")[1]) for p in tmp_path.glob("checkpoint-*")) == ends


def test_early_stopping_ends_the_run_and_stops_the_assistant(tmp_path, vision_example, images):
    trainer = make_trainer(
        tmp_path, vision_example, images, num_train_epochs=6, eval_strategy="steps", eval_steps=4, save_strategy="steps",
        save_steps=4, load_best_model_at_end=True, metric_for_best_model="accuracy",
        callbacks=[EarlyStoppingCallback(early_stopping_patience=1, early_stopping_threshold=1.0)],
        autoassist_synchronous=False,
    )  # fmt: skip
    trainer.train()
    assert trainer.state.global_step == 8  # no evaluation improves by a whole point of accuracy: stop at the second
    assert not trainer.selection_run.worker._thread.is_alive()
    assert (tmp_path / "autoassist_diagnostics.json").is_file()


def test_dataloader_workers_see_the_same_selection(tmp_path, vision_example, images):
    inline = train_and_check(make_trainer(tmp_path / "inline", vision_example, images))
    workers = train_and_check(make_trainer(tmp_path / "workers", vision_example, images, dataloader_num_workers=2))
    # the batch sampler (and so the selection) runs in the main process; workers only load the chosen items
    assert workers.kept_fractions == inline.kept_fractions
    assert workers.selection_run.instances_backpropagated == inline.selection_run.instances_backpropagated
    assert workers.state.log_history[-1]["train_loss"] == pytest.approx(inline.state.log_history[-1]["train_loss"], rel=1e-4)


def test_max_steps_runs_exactly_that_many_steps(tmp_path, vision_example, images):
    trainer = train_and_check(make_trainer(tmp_path, vision_example, images, max_steps=40))
    assert trainer.state.global_step == 40 and len(trainer.kept_fractions) > 40 * 32 / 512


def test_tensorboard_event_file_holds_the_autoassist_scalars(tmp_path, vision_example, images):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train_and_check(make_trainer(tmp_path, vision_example, images, report_to="tensorboard"))
    (event_file,) = tmp_path.rglob("events.out.tfevents.*")  # under output_dir/runs/<date>_<host>
    tags = EventAccumulator(str(event_file)).Reload().Tags()["scalars"]
    for name in ("kept_fraction", "assistant_accuracy", "assistant_skill", "positive_rate", "kept_fraction/label_0",
                 "assistant_seconds", "assistant_cpu_share"):  # fmt: skip  (timings: in the integrations only)
        assert f"train/autoassist/{name}" in tags, tags


def test_torch_compile_on_cpu(tmp_path, vision_example, images):
    # `aot_eager` traces and compiles the graph without needing a C++ toolchain for generated kernels
    trainer = make_trainer(tmp_path, vision_example, images, num_train_epochs=2, torch_compile=True,
                           torch_compile_backend="aot_eager")  # fmt: skip
    train_and_check(trainer)
    assert hasattr(trainer.model_wrapped, "_orig_mod") or hasattr(trainer.model, "_orig_mod")


def test_evaluate_and_predict_are_the_plain_trainers(tmp_path, vision_example, images):
    trainer = train_and_check(make_trainer(tmp_path / "aa", vision_example, images))
    plain = make_trainer(tmp_path / "plain", vision_example, images, trainer_class=Trainer)
    plain.model.load_state_dict(trainer.model.state_dict())
    ours, theirs = trainer.evaluate(), plain.evaluate()
    assert (ours["eval_loss"], ours["eval_accuracy"]) == pytest.approx((theirs["eval_loss"], theirs["eval_accuracy"]))
    ours, theirs = trainer.predict(images[1]), plain.predict(images[1])
    torch.testing.assert_close(torch.as_tensor(ours.predictions), torch.as_tensor(theirs.predictions))
    assert ours.metrics["test_accuracy"] == theirs.metrics["test_accuracy"]
