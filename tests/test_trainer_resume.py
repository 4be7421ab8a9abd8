"""Resuming AutoAssistTrainer mid-epoch or at an epoch end: same selections and the same final weights."""

import logging
import shutil

import pytest
import torch
from transformers import TrainerCallback

from hf_autoassist import AutoAssistConfig, AutoAssistTrainer
from hf_autoassist.data import INDEX_KEY
from hf_autoassist.checkpoint import STATE_NAME

from conftest import tiny_resnet

pytestmark = pytest.mark.slow


class RecordingTrainer(AutoAssistTrainer):
    def training_step(self, model, inputs, *args, **kwargs):
        self.trained_batches.append(inputs[INDEX_KEY].tolist())
        self.batch_steps.append(self.state.global_step)  # optimizer steps done before this batch
        return super().training_step(model, inputs, *args, **kwargs)


def make_trainer(output_dir, vision_example, fashion_mnist, strategy="autoassist", **options):
    train = fashion_mnist["train"].select(range(640)).with_format("numpy")
    options = {"num_train_epochs": 3, **options}
    args = AutoAssistConfig(
        output_dir=str(output_dir),
        report_to="none",
        use_cpu=True,
        per_device_train_batch_size=64,
        gradient_accumulation_steps=2,
        learning_rate=3e-3,
        save_strategy="steps",
        save_steps=2,
        disable_tqdm=True,
        seed=0,
        autoassist_synchronous=True,  # the Assistant learns inside the step: the run is reproducible to the bit
        autoassist_strategy=strategy,
        **options,
    )
    trainer = RecordingTrainer(
        model=tiny_resnet(), args=args, train_dataset=train, data_collator=vision_example.collate_images
    )
    trainer.trained_batches, trainer.batch_steps = [], []
    return trainer


def batches_after(trainer, step):
    """The batches trained after optimizer step `step` (an epoch's last step may hold fewer than accumulated)."""
    return [b for b, s in zip(trainer.trained_batches, trainer.batch_steps) if s >= step]


def reproducible_logs(trainer) -> list[dict]:
    """The log history without what measures time: the Trainer's own speed metrics (the AutoAssist timings go to
    the reporting integrations only)."""
    timed = ("train_runtime", "train_samples_per_second", "train_steps_per_second", "train_loss")
    return [{key: value for key, value in log.items() if key not in timed} for log in trainer.state.log_history]


def saved_state(checkpoint):
    return torch.load(checkpoint / STATE_NAME.format(process_index=0), weights_only=False)


# `adaptive` with a wide margin and its floor at base_prob, so that three epochs of a tiny ResNet thin their batches
OPTIONS = {"adaptive": {"autoassist_learned_margin": 1.0, "autoassist_learned_visits": 0}}


@pytest.mark.parametrize("strategy", ["autoassist", "random", "infobatch", "adaptive"])
def test_resume_takes_the_same_decisions_and_ends_with_the_same_weights(tmp_path, vision_example, fashion_mnist, strategy):
    options = {"logging_steps": 2, **OPTIONS.get(strategy, {})}
    reference = make_trainer(tmp_path, vision_example, fashion_mnist, strategy, **options)
    reference.train()
    final_weights = {k: v.clone() for k, v in reference.model.state_dict().items()}

    checkpoints = sorted(tmp_path.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    mid_epoch = [c for c in checkpoints if 0 < int(c.name.split("-")[1]) - saved_state(c)["epoch_start_step"] < saved_state(c)["epoch_update_steps"]]
    boundary = [c for c in checkpoints if int(c.name.split("-")[1]) - saved_state(c)["epoch_start_step"] == saved_state(c)["epoch_update_steps"]]
    # one checkpoint inside a shrunk epoch, one at the end of an epoch
    chosen = [next(c for c in mid_epoch if saved_state(c)["sampler"]["epoch"] >= 1), boundary[0]]

    for checkpoint in chosen:
        resumed = make_trainer(tmp_path / f"resume-{checkpoint.name}", vision_example, fashion_mnist, strategy,
                               **options)  # fmt: skip
        resumed.train(resume_from_checkpoint=str(checkpoint))
        # the log history too (as transformers' own resume tests read it), timings aside; thinned batches of odd
        # sizes round a logged loss differently by an ulp after a resume (the batches and the weights are the same)
        logs, expected = reproducible_logs(resumed), reproducible_logs(reference)
        if strategy == "adaptive":
            assert len(logs) == len(expected) and all(a == pytest.approx(b, rel=1e-6) for a, b in zip(logs, expected))
        else:
            assert logs == expected, checkpoint.name
        steps_before = int(checkpoint.name.split("-")[1])
        # the same batches, in the same order, from the checkpoint on
        assert resumed.trained_batches == batches_after(reference, steps_before), checkpoint.name
        assert resumed.state.global_step == reference.state.global_step == reference.state.max_steps
        for name, weight in resumed.model.state_dict().items():
            torch.testing.assert_close(weight, final_weights[name], msg=f"{name} after {checkpoint.name}")
        assert resumed.kept_fractions == reference.kept_fractions
        assert resumed.selection_run.instances_backpropagated == reference.selection_run.instances_backpropagated
        if strategy == "autoassist":
            assert resumed.selection_run.worker.state_dict()["seen"] == reference.selection_run.worker.state_dict()["seen"]
            for name, weight in resumed.selection_run.assistant.state_dict().items():
                torch.testing.assert_close(weight, reference.selection_run.assistant.state_dict()[name])
        if strategy in ("infobatch", "adaptive"):
            memory, expected = resumed.selection_run.strategy.memory, reference.selection_run.strategy.memory
            torch.testing.assert_close(memory.loss, expected.loss, equal_nan=True)


def test_a_checkpoint_of_another_strategy_names_the_one_to_resume_with(tmp_path, vision_example, fashion_mnist):
    # a run of the Assistant (the default until 2026-12-06) resumed under today's default
    first = make_trainer(tmp_path / "first", vision_example, fashion_mnist, "autoassist", max_steps=4)
    first.train()
    resumed = make_trainer(tmp_path / "second", vision_example, fashion_mnist, "auto", max_steps=4)
    with pytest.raises(ValueError, match="strategy 'autoassist'.*Resume with `autoassist_strategy='autoassist'`"):
        resumed.train(resume_from_checkpoint=str(tmp_path / "first" / "checkpoint-4"))


def test_checkpoint_without_selection_state_warns_and_still_resumes(tmp_path, vision_example, fashion_mnist, caplog):
    first = make_trainer(tmp_path / "first", vision_example, fashion_mnist)
    first.args.max_steps = 4
    first.train()
    checkpoint = tmp_path / "first" / "checkpoint-4"
    stripped = tmp_path / "stripped"
    shutil.copytree(checkpoint, stripped)
    (stripped / STATE_NAME.format(process_index=0)).unlink()

    resumed = make_trainer(tmp_path / "second", vision_example, fashion_mnist)
    with caplog.at_level(logging.WARNING, logger="hf_autoassist"):
        resumed.train(resume_from_checkpoint=str(stripped))
    assert "has no AutoAssist state" in caplog.text
    assert resumed.state.global_step == resumed.state.max_steps


class FailAtStep(TrainerCallback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise RuntimeError(f"the machine went away at step {self.step}")


def test_a_run_that_fails_mid_training_resumes_from_its_last_checkpoint_exactly(tmp_path, vision_example, fashion_mnist):
    reference = make_trainer(tmp_path / "reference", vision_example, fashion_mnist)
    reference.train()

    failing = make_trainer(tmp_path / "failing", vision_example, fashion_mnist)
    failing.add_callback(FailAtStep(reference.state.global_step - 3))  # inside a shrunk epoch, after a save
    with pytest.raises(RuntimeError, match="the machine went away"):
        failing.train()
    last = max(int(p.name.split("-")[1]) for p in (tmp_path / "failing").glob("checkpoint-*"))

    resumed = make_trainer(tmp_path / "failing", vision_example, fashion_mnist)
    resumed.train(resume_from_checkpoint=True)  # the last checkpoint in output_dir, as a user restarts the script
    assert resumed.trained_batches == batches_after(reference, last)
    assert resumed.state.global_step == reference.state.global_step
    for name, weight in resumed.model.state_dict().items():
        torch.testing.assert_close(weight, reference.model.state_dict()[name], msg=name)


@pytest.mark.parametrize("strategy", ["autoassist", "infobatch"])
def test_resume_inside_an_epoch_decided_block_by_block(tmp_path, vision_example, fashion_mnist, strategy):
    """With `autoassist_rescore_every`, a checkpoint inside the epoch holds the blocks decided so far: the resumed
    run trains them, then decides the rest as the uninterrupted run did."""
    options = dict(num_train_epochs=2, autoassist_warmup_epochs=0.5, autoassist_rescore_every=2)
    if strategy == "infobatch":
        options["autoassist_full_data_finish"] = 0.0
    else:  # a budget: the Assistant has little skill this early, and would keep about everything
        options["autoassist_target_keep"] = 0.5
    reference = make_trainer(tmp_path, vision_example, fashion_mnist, strategy, **options)
    reference.train()
    assert min(reference.kept_fractions.values()) < 1.0  # the first epoch already shrank, after its warmup

    checkpoints = sorted(tmp_path.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    undecided = [c for c in checkpoints if not saved_state(c)["sampler"]["finished"]]
    assert undecided, "no checkpoint was taken while the pass was still being decided"
    for checkpoint in sorted({undecided[0], undecided[-1]}):
        resumed = make_trainer(tmp_path / f"resume-{checkpoint.name}", vision_example, fashion_mnist, strategy, **options)
        resumed.train(resume_from_checkpoint=str(checkpoint))
        assert resumed.trained_batches == batches_after(reference, int(checkpoint.name.split("-")[1])), checkpoint.name
        assert resumed.state.global_step == reference.state.global_step == reference.state.max_steps
        assert resumed.kept_fractions == reference.kept_fractions
        for name, weight in resumed.model.state_dict().items():
            torch.testing.assert_close(weight, reference.model.state_dict()[name], msg=f"{name} after {checkpoint.name}")
