"""Bad input gets a clear error that names the fix (the other cases live beside the feature they guard: iterable
datasets, models without logits and plain `TrainingArguments` in test_trainer.py; missing data files in the
example tests; resuming with another training set in test_user_scripts.py)."""

import datasets
import numpy as np
import pytest
import torch

from hf_autoassist import AutoAssistConfig, AutoAssistTrainer
from hf_autoassist.assistants import PixelAssistant, build_assistant

from conftest import tiny_resnet


def images(n=32):
    rng = np.random.default_rng(0)
    return datasets.Dataset.from_dict(
        {"pixel_values": rng.normal(size=(n, 1, 28, 28)).astype("float32"), "labels": rng.integers(0, 10, n)}
    ).with_format("torch")


def config(tmp_path, **kwargs):
    defaults = dict(output_dir=str(tmp_path), report_to="none", use_cpu=True, per_device_train_batch_size=8,
                    disable_tqdm=True, save_strategy="no", seed=0, autoassist_strategy="autoassist")  # fmt: skip
    return AutoAssistConfig(**{**defaults, **kwargs})


@pytest.mark.parametrize(
    "option,value,message",
    [
        ("autoassist_warmup_epochs", -1.0, "Use 0 to let the Assistant select"),
        ("autoassist_assistant_lr", 0.0, "must be > 0"),
        ("autoassist_queue_size", 0, "must be >= 1"),
        ("autoassist_assistant_cpu_share", 1.5, "set it to None for no bound"),
        ("autoassist_loss_momentum", 1.0, "0 compares each loss with its own batch"),
        ("autoassist_assistant_dim", 0, "must be >= 1"),
        ("autoassist_pool_size", 0, "must be >= 1"),
        ("autoassist_keep_prob", 0.0, "Use 1.0 to keep every instance"),
        ("autoassist_prune_ratio", 1.0, "Use 0 to prune nothing"),
        ("autoassist_full_data_finish", 1.0, "Use 0 to select until the end"),
        ("autoassist_target_keep", 0.0, "Leave it unset to let the rule decide"),
        ("autoassist_target_keep", 1.5, "Leave it unset to let the rule decide"),
        ("autoassist_strategy", "bogus", "must be one of"),
        ("autoassist_assistant", "bogus", "must be one of"),
    ],
)
def test_each_out_of_range_option_names_itself_and_the_fix(tmp_path, option, value, message):
    with pytest.raises(ValueError, match=rf"`{option}`.*{message}"):
        config(tmp_path, **{option: value})


def test_pixel_assistant_on_text_names_the_column_and_the_other_assistant():
    text = datasets.Dataset.from_dict({"input_ids": [[1, 2], [3]], "labels": [0, 1]})
    with pytest.raises(ValueError, match="reads a `pixel_values` column.*autoassist_assistant='bag_of_tokens'"):
        build_assistant("pixels", text)


def test_custom_assistant_built_for_another_training_set_is_refused(tmp_path):
    other = PixelAssistant(torch.zeros(10, 1, 28, 28))
    # under the default: a trainer handed an Assistant uses it ("auto" resolves to "autoassist")
    trainer = AutoAssistTrainer(model=tiny_resnet(), args=config(tmp_path, max_steps=2, autoassist_strategy="auto"),
                                train_dataset=images(), assistant=other)  # fmt: skip
    with pytest.raises(ValueError, match="built for 10 instances but the training set has 32.*same `train_dataset`"):
        trainer.train()


def test_empty_training_set_is_refused_before_training(tmp_path):
    empty = images().select([])
    trainer = AutoAssistTrainer(model=tiny_resnet(), args=config(tmp_path, max_steps=2), train_dataset=empty)
    with pytest.raises(ValueError, match="at least one instance"):
        trainer.train()


def test_batch_without_labels_names_the_way_out(tmp_path):
    unlabelled = images().remove_columns("labels")

    class Logits(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(28 * 28, 10)

        def forward(self, pixel_values):
            logits = self.linear(pixel_values.flatten(1))
            return {"loss": logits.logsumexp(-1).mean(), "logits": logits}

    trainer = AutoAssistTrainer(
        model=Logits(), args=config(tmp_path, max_steps=2, autoassist_assistant="pixels"), train_dataset=unlabelled
    )
    with pytest.raises(ValueError, match="has no `labels`.*per_instance_loss_fn="):
        trainer.train()


def test_batch_larger_than_the_training_set_trains_on_one_short_batch(tmp_path):
    trainer = AutoAssistTrainer(
        model=tiny_resnet(), args=config(tmp_path, per_device_train_batch_size=64, num_train_epochs=3), train_dataset=images(10)
    )
    trainer.train()
    assert trainer.state.global_step == trainer.state.max_steps == 3  # the warmup epoch and two shrunk ones: 1 batch each


def test_decline_label_without_the_loss_memory_names_the_fix(tmp_path):
    with pytest.raises(ValueError, match="set `autoassist_assistant_memory=True`"):
        config(tmp_path, autoassist_label="decline", autoassist_assistant_memory=False)
