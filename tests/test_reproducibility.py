"""Two runs with the same seed under the library's defaults (on CPU the Assistant learns inside the training step)
keep the same instances in every epoch and end with the same weights and metrics: what the benchmarks measure is
what a user re-running the same command gets. Only the Assistant in a background thread (the default on an
accelerator, or `autoassist_synchronous=False`) learns from the queue at the pace of the thread, so its decisions
may differ run to run."""

import torch
from transformers import TrainerCallback

from hf_autoassist import AutoAssistConfig, AutoAssistTrainer

from conftest import tiny_resnet


class KeptPerEpoch(TrainerCallback):
    """The indices each epoch kept, in the order trained (the sampler decides at the epoch's start)."""

    def __init__(self):
        self.trainer = None
        self.kept: dict[int, torch.Tensor] = {}

    def on_epoch_end(self, args, state, control, **kwargs):
        sampler = self.trainer.selection_run.sampler
        self.kept[sampler.epoch] = sampler.kept.clone()


def train_with_defaults(output_dir, vision_example, fashion_mnist):
    train = fashion_mnist["train"].select(range(640)).with_format("numpy")
    test = fashion_mnist["test"].select(range(256)).with_format("numpy")
    args = AutoAssistConfig(
        output_dir=str(output_dir), num_train_epochs=4, per_device_train_batch_size=32, learning_rate=3e-3,
        save_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True, seed=0, autoassist_strategy="autoassist",
    )  # fmt: skip
    assert args.autoassist_synchronous is None  # the default users get, not a pinned mode
    recorder = KeptPerEpoch()
    trainer = AutoAssistTrainer(
        model=tiny_resnet(), args=args, train_dataset=train, eval_dataset=test,
        data_collator=vision_example.collate_images, callbacks=[recorder],
    )  # fmt: skip
    recorder.trainer = trainer
    trainer.train()
    return trainer, recorder.kept, trainer.evaluate()


def test_two_runs_with_the_same_seed_keep_the_same_instances_and_end_the_same(tmp_path, vision_example, fashion_mnist):
    first, first_kept, first_metrics = train_with_defaults(tmp_path / "a", vision_example, fashion_mnist)
    second, second_kept, second_metrics = train_with_defaults(tmp_path / "b", vision_example, fashion_mnist)
    assert first.selection_run.worker.synchronous  # on CPU: inside the step
    assert sorted(first_kept) == sorted(second_kept) == [0, 1, 2, 3]
    assert min(len(kept) for kept in first_kept.values()) < 640, "no epoch shrank: nothing was compared"
    for epoch, kept in first_kept.items():
        assert torch.equal(kept, second_kept[epoch]), f"epoch {epoch} kept other instances"
    assert first.kept_fractions == second.kept_fractions
    assert first.autoassist_history == second.autoassist_history  # the Assistant's accuracy and skill too
    assert first_metrics["eval_loss"] == second_metrics["eval_loss"]
    for (name, weight), other in zip(first.model.state_dict().items(), second.model.state_dict().values()):
        assert torch.equal(weight, other), name
