"""Decisions inside the epoch (`autoassist_rescore_every`) with a fractional warmup: a one-epoch run shrinks after
its warmup, on an honest plan."""

import pytest

from hf_autoassist import AutoAssistConfig, AutoAssistTrainer
from hf_autoassist.data import INDEX_KEY

from conftest import tiny_resnet

pytestmark = pytest.mark.slow


class RecordingTrainer(AutoAssistTrainer):
    def training_step(self, model, inputs, *args, **kwargs):
        self.trained.append(inputs[INDEX_KEY].tolist())
        return super().training_step(model, inputs, *args, **kwargs)


def one_epoch(tmp_path, vision_example, fashion_mnist, accumulation=1, **options):
    train = fashion_mnist["train"].select(range(1600)).with_format("numpy")
    args = AutoAssistConfig(
        output_dir=str(tmp_path), report_to="none", use_cpu=True, per_device_train_batch_size=32,
        gradient_accumulation_steps=accumulation, num_train_epochs=1, learning_rate=3e-3, save_strategy="no",
        logging_steps=2, disable_tqdm=True, seed=0, autoassist_synchronous=True, autoassist_warmup_epochs=0.25,
        autoassist_rescore_every=3, **{"autoassist_strategy": "autoassist", **options},
    )  # fmt: skip
    trainer = RecordingTrainer(model=tiny_resnet(), args=args, train_dataset=train, data_collator=vision_example.collate_images)
    trainer.trained = []
    trainer.train()
    return trainer


@pytest.mark.parametrize("accumulation", [1, 3])
def test_a_one_epoch_run_shrinks_after_its_warmup_and_ends_on_its_plan(tmp_path, vision_example, fashion_mnist, accumulation):
    trainer = one_epoch(tmp_path, vision_example, fashion_mnist, accumulation)
    kept = trainer.kept_fractions[0]
    assert kept <= 0.9, trainer.autoassist_history
    trained = [i for batch in trainer.trained for i in batch]
    assert len(trained) == len(set(trained)) == trainer.selection_run.instances_backpropagated
    # the warmup's quarter of the pass is trained whole, before anything is skipped
    pass_order = trainer.selection_run.sampler.candidates.tolist()
    assert trained[:400] == pass_order[:400]
    # the epoch holds whole accumulated steps, and the plan, re-made at each decision, is exact at the end:
    # the LR schedule ends at 0 on the last step and the epoch counter at 1
    assert len(trainer.trained) % accumulation == 0
    assert trainer.state.global_step == trainer.state.max_steps == len(trainer.trained) // accumulation
    assert trainer.lr_scheduler.get_last_lr()[0] == pytest.approx(0.0, abs=1e-12)
    assert trainer.state.epoch == pytest.approx(1.0)
    losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    assert sum(losses[-3:]) < sum(losses[:3])


def test_rescoring_follows_the_budget_inside_the_epoch(tmp_path, vision_example, fashion_mnist):
    trainer = one_epoch(tmp_path, vision_example, fashion_mnist, autoassist_target_keep=0.4)
    # a quarter kept whole, then about 0.4 of the rest
    assert trainer.kept_fractions[0] == pytest.approx(0.25 + 0.75 * 0.4, abs=0.05)


def test_rescore_every_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="leave it unset"):
        AutoAssistConfig(output_dir=str(tmp_path), autoassist_rescore_every=0)
