import datasets
import numpy as np
import pytest
import torch
from torch import nn
from transformers import HfArgumentParser, Trainer, TrainingArguments

from hf_autoassist import AutoAssistConfig, AutoAssistTrainer
from hf_autoassist.data import INDEX_KEY

from conftest import tiny_resnet


def random_images(n=32, seed=0):
    rng = np.random.default_rng(seed)
    return datasets.Dataset.from_dict(
        {"pixel_values": rng.normal(size=(n, 1, 28, 28)).astype("float32"), "labels": rng.integers(0, 10, n)}
    ).with_format("torch")


def config(tmp_path, **kwargs):
    defaults = dict(output_dir=str(tmp_path), report_to="none", use_cpu=True, per_device_train_batch_size=8, seed=0,
                    autoassist_strategy="autoassist")  # the Assistant's machinery (the default is `adaptive`)
    return AutoAssistConfig(**{**defaults, **kwargs})


def backprop(trainer, model, batches, num_items_in_batch):
    model.zero_grad()
    trainer.current_gradient_accumulation_steps = len(batches)
    losses = [trainer.training_step(model, dict(batch), num_items_in_batch) for batch in batches]
    return torch.stack(losses), [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("accumulation,smoothing", [(1, 0.0), (2, 0.0), (2, 0.1)])
def test_backpropagated_loss_and_gradients_equal_plain_trainer(tmp_path, accumulation, smoothing):
    data = random_images()
    batches = [
        {"pixel_values": data[i : i + 8]["pixel_values"], "labels": data[i : i + 8]["labels"]}
        for i in range(0, 8 * accumulation, 8)
    ]
    num_items = sum(int(b["labels"].numel()) for b in batches)
    kwargs = dict(gradient_accumulation_steps=accumulation, label_smoothing_factor=smoothing)

    plain_model = tiny_resnet()
    plain = Trainer(model=plain_model, args=TrainingArguments(str(tmp_path / "p"), report_to="none", **kwargs))
    expected_losses, expected_grads = backprop(plain, plain_model, batches, num_items)

    model = tiny_resnet()
    trainer = AutoAssistTrainer(model=model, args=config(tmp_path / "a", **kwargs), train_dataset=data)
    trainer.get_train_dataloader()  # builds the Assistant
    indexed = [{**b, INDEX_KEY: torch.arange(i * 8, i * 8 + 8)} for i, b in enumerate(batches)]
    losses, grads = backprop(trainer, model, indexed, num_items)

    torch.testing.assert_close(losses, expected_losses)
    for got, want in zip(grads, expected_grads):
        torch.testing.assert_close(got, want)
    # and the same forward pass fed the Assistant one loss per instance
    assert trainer.selection_run.worker.seen == 8 * accumulation


def test_base_prob_outside_unit_interval_names_the_fix(tmp_path):
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"`autoassist_base_prob` must be in \(0, 1\].*use 1.0"):
            config(tmp_path, autoassist_base_prob=bad)


def test_command_line_exposes_the_options_and_rejects_unknown_choices(tmp_path):
    parser = HfArgumentParser(AutoAssistConfig)
    (args,) = parser.parse_args_into_dataclasses(
        ["--output_dir", str(tmp_path), "--autoassist_base_prob", "0.5", "--autoassist_strategy", "none"]
    )
    assert args.autoassist_base_prob == 0.5 and args.autoassist_strategy == "none"
    assert "Floor on every instance" in parser.format_help()
    with pytest.raises(SystemExit):
        parser.parse_args_into_dataclasses(["--output_dir", str(tmp_path), "--autoassist_strategy", "bogus"])


def test_plain_training_arguments_are_refused_with_the_fix(tmp_path):
    with pytest.raises(TypeError, match="AutoAssistConfig"):
        AutoAssistTrainer(model=tiny_resnet(), args=TrainingArguments(str(tmp_path)), train_dataset=random_images())


def test_a_stream_is_refused_where_selection_reads_an_index_and_trained_as_the_plain_trainer_does_without_a_check(tmp_path, caplog):
    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            yield {"pixel_values": torch.zeros(1, 28, 28), "labels": 0}

    with pytest.raises(ValueError, match="autoassist_strategy='infobatch'.*streamed.*streaming=True"):
        AutoAssistTrainer(model=tiny_resnet(), args=config(tmp_path, autoassist_strategy="infobatch"), train_dataset=Stream())
    streamed = random_images().to_iterable_dataset()
    with pytest.raises(ValueError, match="autoassist_strategy='adaptive'.*streamed"):  # it reads every last loss
        AutoAssistTrainer(model=tiny_resnet(), args=config(tmp_path, autoassist_strategy="adaptive"), train_dataset=streamed)
    with pytest.raises(ValueError, match="autoassist_plausibility='labels'"):  # a check reads instances by index too
        AutoAssistTrainer(model=tiny_resnet(), args=config(tmp_path, autoassist_strategy="none",
                                                           autoassist_plausibility="labels"), train_dataset=streamed)  # fmt: skip

    # under `none`, and the default `auto` (which says so), the plain Trainer's loader: the same steps and weights
    options = dict(max_steps=6, learning_rate=1e-2, save_strategy="no", logging_steps=2, disable_tqdm=True)
    torch.manual_seed(0)
    plain_args = TrainingArguments(str(tmp_path / "plain"), report_to="none", use_cpu=True, per_device_train_batch_size=8,
                                   seed=0, **options)  # fmt: skip
    plain = Trainer(model=tiny_resnet(), args=plain_args, train_dataset=streamed)
    plain.train()
    for strategy in ("none", "auto"):
        torch.manual_seed(0)
        args = config(tmp_path / strategy, autoassist_strategy=strategy, **options)
        with caplog.at_level("WARNING", logger="hf_autoassist"):
            trainer = AutoAssistTrainer(model=tiny_resnet(), args=args, train_dataset=streamed)
            trainer.train()
        assert trainer.selection_run is None and trainer.state.global_step == plain.state.global_step == 6
        for (name, ours), theirs in zip(trainer.model.state_dict().items(), plain.model.state_dict().values()):
            torch.testing.assert_close(ours, theirs, msg=name)
        assert not [p.name for p in (tmp_path / strategy).iterdir() if p.name.startswith("autoassist")]
    warned = [r.getMessage() for r in caplog.records if "The training set is streamed" in r.getMessage()]
    assert len(warned) == 1 and "trains on every instance, as the plain `Trainer` does" in warned[0]


class LossOnlyModel(nn.Module):
    """Returns a loss but no logits, so no per-instance loss can be derived."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(28 * 28, 10)

    def forward(self, pixel_values, labels):
        return {"loss": nn.functional.cross_entropy(self.linear(pixel_values.flatten(1)), labels)}


def test_model_without_logits_gets_a_clear_error_and_a_way_out(tmp_path):
    trainer = AutoAssistTrainer(model=LossOnlyModel(), args=config(tmp_path, max_steps=2), train_dataset=random_images())
    with pytest.raises(ValueError, match="per_instance_loss_fn="):
        trainer.train()

    def loss_fn(outputs, labels):
        return torch.zeros(len(labels))

    trainer = AutoAssistTrainer(
        model=LossOnlyModel(), args=config(tmp_path, max_steps=2), train_dataset=random_images(), per_instance_loss_fn=loss_fn
    )
    trainer.train()
    assert trainer.selection_run.worker.seen == 16
