"""Regression tests for what users' own scripts hand the trainer: dataset formats, repeated `train()` calls,
threads, resumes with another training set, `max_steps` bookkeeping."""

import json
import logging
import sys
import threading

import datasets
import numpy as np
import PIL.Image
import pytest
import torch
from transformers import BatchEncoding, BertConfig, BertForSequenceClassification, DataCollatorWithPadding

from hf_autoassist import AutoAssistConfig, AutoAssistTrainer
from hf_autoassist.assistants import BagOfTokensAssistant, build_assistant

from conftest import tiny_resnet


def text_classification_set(n=64, fmt=None):
    rng = np.random.default_rng(0)
    ds = datasets.Dataset.from_dict(
        {"input_ids": [rng.integers(5, 50, rng.integers(3, 9)).tolist() for _ in range(n)], "labels": rng.integers(0, 2, n)}
    )
    if fmt is not None:
        ds.set_format(fmt)
    return ds


def tiny_bert():
    torch.manual_seed(0)
    config = BertConfig(vocab_size=60, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    return BertForSequenceClassification(config)


class PadTokenizer:
    """The little of a tokenizer `DataCollatorWithPadding` needs, so no vocabulary has to be downloaded."""

    pad_token_id, padding_side, model_input_names = 0, "right", ["input_ids", "attention_mask"]

    def pad(self, features, return_tensors="pt", **kwargs):
        width = max(len(f["input_ids"]) for f in features)
        ids = [list(map(int, f["input_ids"])) + [0] * (width - len(f["input_ids"])) for f in features]
        mask = [[1] * len(f["input_ids"]) + [0] * (width - len(f["input_ids"])) for f in features]
        batch = {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask)}
        batch["labels"] = torch.tensor([int(f["labels"]) for f in features])
        return BatchEncoding(batch)


def args(tmp_path, **kwargs):
    defaults = dict(output_dir=str(tmp_path), report_to="none", use_cpu=True, per_device_train_batch_size=8,
                    num_train_epochs=2, save_strategy="no", disable_tqdm=True, seed=0, learning_rate=1e-3,
                    autoassist_strategy="autoassist")  # the Assistant's thread and memory  # fmt: skip
    return AutoAssistConfig(**{**defaults, **kwargs})


@pytest.mark.parametrize("fmt", [None, "torch", "numpy"])
def test_scalar_labels_of_a_formatted_classification_set_are_not_token_lists(fmt):
    assistant = build_assistant("auto", text_classification_set(fmt=fmt))
    assert isinstance(assistant, BagOfTokensAssistant)
    assert len(assistant.tgt) == 0  # classification: no target tokens, the labels are classes


def test_text_classifier_trains_with_padding_collator_on_a_torch_formatted_set(tmp_path):
    trainer = AutoAssistTrainer(
        model=tiny_bert(), args=args(tmp_path, num_train_epochs=3, autoassist_warmup_epochs=1),
        train_dataset=text_classification_set(fmt="torch"), data_collator=DataCollatorWithPadding(PadTokenizer()),
    )  # fmt: skip
    trainer.train()
    assert trainer.state.global_step == trainer.state.max_steps
    assert trainer.kept_fractions[0] == 1.0 and trainer.selection_run.instances_backpropagated >= 64


def image_set_with_transform(fashion_mnist, n=256):
    """As in `run_image_classification.py`: stored `datasets.Image` column, `set_transform` makes `pixel_values`."""
    train = fashion_mnist["train"].select(range(n)).with_format("numpy")
    images = [PIL.Image.fromarray(np.asarray(x, dtype=np.uint8).reshape(28, 28)) for x in train["pixel_values"]]
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(num_classes=10)})
    ds = datasets.Dataset.from_dict({"image": images, "label": train["labels"][:].tolist()}, features=features)
    transformed = []

    def transform(batch):
        transformed.append(len(batch["image"]))
        pixels = [torch.from_numpy(np.asarray(image, dtype=np.float32)).unsqueeze(0) / 127.5 - 1 for image in batch["image"]]
        return {"pixel_values": pixels, "labels": batch["label"]}

    ds.set_transform(transform)
    return ds, transformed, train


def test_set_transform_image_set_builds_the_assistant_without_running_the_transform(fashion_mnist):
    ds, transformed, stored = image_set_with_transform(fashion_mnist)
    assistant = build_assistant("auto", ds)
    # the raw images were read and pooled; the transform only ran on single items, to learn which columns it makes
    assert set(transformed) == {1} and len(transformed) <= 3
    assert torch.equal(assistant.labels, torch.as_tensor(stored["labels"][:]))
    # the same pooled features as from the stored pixels (box filter vs average pooling of 4x4 blocks)
    reference = build_assistant("pixels", stored)
    correlation = torch.corrcoef(torch.stack([assistant.features.flatten(), reference.features.flatten()]))[0, 1]
    assert correlation > 0.99


def test_set_transform_image_set_trains_and_transforms_only_what_it_trains_on(tmp_path, fashion_mnist):
    ds, transformed, _ = image_set_with_transform(fashion_mnist)
    trainer = AutoAssistTrainer(
        model=tiny_resnet(), args=args(tmp_path, num_train_epochs=3, remove_unused_columns=False), train_dataset=ds,
    )  # fmt: skip
    trainer.train()
    assert min(trainer.kept_fractions.values()) < 1.0
    # skipped images are never transformed (beyond a few single-item probes of the columns at the start)
    assert 0 <= sum(transformed) - trainer.selection_run.instances_backpropagated <= 8


def test_set_transform_text_set_reads_the_tokens_it_needs(tmp_path):
    """A transform that tokenizes on the fly: the tokens exist only through it, so it runs once per item at start."""
    stored = text_classification_set()
    ds = datasets.Dataset.from_dict({"text": [" ".join(map(str, ids)) for ids in stored["input_ids"]], "label": stored["labels"]})
    ds.set_transform(lambda batch: {"input_ids": [list(map(int, t.split())) for t in batch["text"]], "labels": batch["label"]})
    assistant = build_assistant("auto", ds)
    assert isinstance(assistant, BagOfTokensAssistant)
    reference = build_assistant("auto", stored)
    assert torch.equal(assistant.src, reference.src)
    trainer = AutoAssistTrainer(
        model=tiny_bert(), args=args(tmp_path, num_train_epochs=3, remove_unused_columns=False), train_dataset=ds,
        data_collator=DataCollatorWithPadding(PadTokenizer()),
    )  # fmt: skip
    trainer.train()
    assert trainer.state.global_step == trainer.state.max_steps


def fashion_trainer(tmp_path, vision_example, fashion_mnist, n=256, **kwargs):
    train = fashion_mnist["train"].select(range(n)).with_format("numpy")
    return AutoAssistTrainer(
        model=tiny_resnet(), args=args(tmp_path, **kwargs), train_dataset=train,
        data_collator=vision_example.collate_images,
    )  # fmt: skip


def test_on_cpu_the_assistant_trains_in_the_step_unless_asked_for_a_thread(tmp_path, vision_example, fashion_mnist):
    default = fashion_trainer(tmp_path / "default", vision_example, fashion_mnist, n=64)
    default.train()
    assert default.selection_run.worker.synchronous and default.selection_run.worker._thread is None
    worker = default.selection_run.worker
    # every batch learned from at once
    assert worker.trained == worker.seen == default.selection_run.instances_backpropagated > 64
    threaded = fashion_trainer(tmp_path / "thread", vision_example, fashion_mnist, n=64, autoassist_synchronous=False)
    threaded.train()
    assert not threaded.selection_run.worker.synchronous and threaded.selection_run.worker._thread is not None


def test_each_train_call_starts_a_fresh_assistant_and_stops_its_thread(tmp_path, vision_example, fashion_mnist):
    alive_before = sum(t.name == "autoassist-assistant" for t in threading.enumerate())
    trainer = fashion_trainer(tmp_path, vision_example, fashion_mnist, autoassist_synchronous=False)
    trainer.train()
    first_assistant, first_worker = trainer.selection_run.assistant, trainer.selection_run.worker
    assert not first_worker._thread.is_alive()
    trainer.train()
    assert trainer.selection_run.assistant is not first_assistant
    assert trainer.selection_run.worker.seen == trainer.selection_run.instances_backpropagated  # counted from 0 again
    assert not trainer.selection_run.worker._thread.is_alive()
    # no thread of this trainer's two runs is left (other tests' trainers may have their own)
    assert sum(t.name == "autoassist-assistant" for t in threading.enumerate()) <= alive_before


def test_a_run_that_fails_stops_its_thread(tmp_path, vision_example, fashion_mnist):
    trainer = fashion_trainer(tmp_path, vision_example, fashion_mnist, autoassist_synchronous=False)

    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    trainer.model.resnet.forward = explode
    with pytest.raises(RuntimeError, match="boom"):
        trainer.train()
    assert not trainer.selection_run.worker._thread.is_alive()


class EncodedImages(torch.utils.data.Dataset):
    """A torch Dataset whose items are `BatchEncoding`s, as a processor's output would be."""

    def __init__(self, hf_dataset):
        self.data = hf_dataset

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        item = self.data[i]
        return BatchEncoding({"pixel_values": item["pixel_values"], "labels": item["labels"]})


@pytest.mark.parametrize("strategy", ["none", "autoassist"])
def test_batch_encoding_items_are_taken(tmp_path, vision_example, fashion_mnist, strategy):
    train = EncodedImages(fashion_mnist["train"].select(range(128)).with_format("numpy"))
    trainer = AutoAssistTrainer(
        model=tiny_resnet(), args=args(tmp_path, autoassist_strategy=strategy, remove_unused_columns=False),
        train_dataset=train, data_collator=vision_example.collate_images,
    )  # fmt: skip
    trainer.train()
    assert trainer.state.global_step == trainer.state.max_steps


@pytest.mark.parametrize("strategy", ["none", "autoassist"])
def test_resuming_with_another_training_set_warns_and_says_what_is_lost(tmp_path, vision_example, fashion_mnist, strategy, caplog):
    first = fashion_trainer(tmp_path / "a", vision_example, fashion_mnist, n=256, autoassist_strategy=strategy,
                            save_strategy="steps", save_steps=8)  # fmt: skip
    first.train()
    second = fashion_trainer(tmp_path / "b", vision_example, fashion_mnist, n=320, autoassist_strategy=strategy,
                             num_train_epochs=3)  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="hf_autoassist"):
        second.train(resume_from_checkpoint=str(tmp_path / "a" / "checkpoint-8"))
    assert "256 instances" in caplog.text and "320" in caplog.text
    assert ("nothing of the selection is lost" in caplog.text) == (strategy == "none")
    assert second.state.global_step == second.state.max_steps


def test_max_steps_leaves_a_readable_epoch_count_and_resume_restores_assistant_seconds(tmp_path, vision_example, fashion_mnist):
    trainer = fashion_trainer(tmp_path, vision_example, fashion_mnist, max_steps=40, save_strategy="steps", save_steps=40)
    trainer.train()
    state = json.loads((tmp_path / "checkpoint-40" / "trainer_state.json").read_text())
    assert state["num_train_epochs"] < 100 and state["num_train_epochs"] != sys.maxsize
    assert state["num_train_epochs"] >= int(trainer.state.epoch)
    saved = torch.load(tmp_path / "checkpoint-40" / "autoassist_state-0.pt", weights_only=False)
    seconds = saved["strategy"]["worker"]["train_seconds"]
    assert seconds > 0
    resumed = fashion_trainer(tmp_path / "r", vision_example, fashion_mnist, max_steps=40)
    resumed.train(resume_from_checkpoint=str(tmp_path / "checkpoint-40"))
    assert seconds <= resumed.selection_run.worker.train_seconds < seconds + 1.0  # restored, not counted from 0
