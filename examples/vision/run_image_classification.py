#!/usr/bin/env python
"""Train an image classifier with `AutoAssistTrainer` (or the plain `Trainer`) on MNIST / Fashion-MNIST.

Shaped like `transformers/examples/pytorch/image-classification/run_image_classification.py`. Offline it reads the
IDX files of `--data_dir` and builds a small `ResNetForImageClassification` from a `ResNetConfig`; online it can
also take `--dataset_name` (e.g. `zalando-datasets/fashion_mnist`) and `--model_name_or_path`.

    python examples/vision/run_image_classification.py --data_dir ../shared/data/fashion-mnist \
        --output_dir outputs/vision --trainer both --max_train_samples 10000 --num_train_epochs 20

(The default keeps every instance on a recipe of 8 epochs or fewer: a short recipe has no visits to spare.)
"""

import gzip
import logging
import os
import struct
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import transformers
from accelerate import PartialState
from datasets import Array3D, ClassLabel, Dataset, DatasetDict, Features, load_dataset
from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModelForImageClassification,
    HfArgumentParser,
    ResNetConfig,
    ResNetForImageClassification,
    Trainer,
    ViTConfig,
    ViTForImageClassification,
    set_seed,
)

from hf_autoassist import AutoAssistConfig, AutoAssistTrainer

# the examples' shared side-by-side table (examples/comparison.py)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from comparison import accuracy, report_side_by_side  # noqa: E402

logger = logging.getLogger(__name__)

FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip
IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


@dataclass
class ModelArguments:
    """Which model to train, and with which trainer."""

    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "A Hub id or local folder to fine-tune. Without it a small ResNet is built from a config."},
    )
    model_type: str = field(
        default="resnet",
        metadata={"help": "Model built from a config when no checkpoint is given.", "choices": ["resnet", "vit"]},
    )
    hidden_sizes: str = field(default="16,32", metadata={"help": "ResNet stage widths when built from a config."})
    depths: str = field(default="1,1", metadata={"help": "ResNet blocks per stage when built from a config."})
    vit_hidden_size: int = field(default=64, metadata={"help": "ViT width when built from a config."})
    vit_layers: int = field(default=2, metadata={"help": "ViT encoder layers when built from a config."})
    vit_heads: int = field(default=4, metadata={"help": "ViT attention heads when built from a config."})
    vit_patch_size: int = field(default=7, metadata={"help": "ViT patch side (7 cuts 28x28 into 16 patches)."})
    trainer: str = field(
        default="autoassist",
        metadata={
            "help": "'autoassist', 'plain' (transformers.Trainer), or 'both' to train each in turn with the same "
            "seed and print them side by side.",
            "choices": ["autoassist", "plain", "both"],
        },
    )


@dataclass
class DataTrainingArguments:
    """Where the images come from."""

    data_dir: str | None = field(
        default=None,
        metadata={"help": "Folder with MNIST-style IDX files (train-images-idx3-ubyte.gz, ...), read in place."},
    )
    dataset_name: str | None = field(
        default=None, metadata={"help": "A Hub dataset with `image` and `label` columns (needs network access)."}
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Keep only this many training images."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Keep only this many test images."})

    def __post_init__(self):
        if self.data_dir is None and self.dataset_name is None:
            raise ValueError("Pass --data_dir (a folder of IDX files, e.g. ../shared/data/fashion-mnist) or --dataset_name.")


def read_idx(path: str) -> np.ndarray:
    """An IDX file (gzip or not) as a numpy array: uint8 images `(N, H, W)` or labels `(N,)`."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic, count = struct.unpack(">II", data[:8])
    if magic == 2051:
        rows, cols = struct.unpack(">II", data[8:16])
        return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(count, rows, cols)
    if magic == 2049:
        return np.frombuffer(data, dtype=np.uint8, offset=8)
    raise ValueError(f"{path} is not an IDX image (2051) or label (2049) file: magic number {magic}.")


def load_idx_dataset(data_dir: str) -> DatasetDict:
    """`train` and `test` splits with `pixel_values` (uint8, 1xHxW) and `labels`, read from `data_dir`."""
    splits = {}
    for split, (images_name, labels_name) in IDX_FILES.items():
        images_path, labels_path = os.path.join(data_dir, images_name), os.path.join(data_dir, labels_name)
        for path in (images_path, labels_path):
            if not os.path.isfile(path):
                raise FileNotFoundError(
                    f"--data_dir {data_dir} has no {os.path.basename(path)}. It must hold the four MNIST-style IDX "
                    f"files: {sorted(n for pair in IDX_FILES.values() for n in pair)}."
                )
        images, labels = read_idx(images_path), read_idx(labels_path)
        if len(images) != len(labels):
            raise ValueError(f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels.")
        num_classes = int(labels.max()) + 1
        names = FASHION_MNIST_CLASSES if "fashion" in data_dir.lower() else [str(i) for i in range(num_classes)]
        features = Features(
            {"pixel_values": Array3D(shape=(1, *images.shape[1:]), dtype="uint8"), "labels": ClassLabel(names=names)}
        )
        splits[split] = Dataset.from_dict(
            {"pixel_values": images[:, None], "labels": labels.astype(np.int64)}, features=features
        )
    return DatasetDict(splits)


def load_hub_dataset(name: str) -> DatasetDict:
    """The online path: a Hub dataset of PIL images turned into the same columns as `load_idx_dataset`."""
    raw = load_dataset(name)

    def to_arrays(batch):
        arrays = [np.asarray(image.convert("L"), dtype=np.uint8)[None] for image in batch["image"]]
        return {"pixel_values": arrays, "labels": batch["label"]}

    return raw.map(to_arrays, batched=True, remove_columns=raw["train"].column_names, desc="Decoding images")


def collate_images(examples: list[dict]) -> dict[str, torch.Tensor]:
    """uint8 images to floats in [-1, 1]; done per batch so that skipped images cost nothing."""
    pixels = torch.stack([torch.as_tensor(example["pixel_values"]) for example in examples]).float()
    return {
        "pixel_values": pixels / 127.5 - 1.0,
        "labels": torch.tensor([int(example["labels"]) for example in examples], dtype=torch.long),
    }


class ProcessorCollator:
    """Batches through the image processor a pretrained checkpoint ships (resize, rescale, normalise), so that a
    Hub model sees images as it was trained on them; grey images are repeated to the model's channels."""

    def __init__(self, image_processor, num_channels: int):
        self.image_processor = image_processor
        self.num_channels = num_channels

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        images = []
        for example in examples:
            image = np.asarray(example["pixel_values"], dtype=np.uint8).transpose(1, 2, 0)  # (H, W, C)
            if image.shape[-1] == 1 and self.num_channels == 3:
                image = np.repeat(image, 3, axis=-1)
            images.append(image)
        pixels = self.image_processor(images, return_tensors="pt", input_data_format="channels_last")["pixel_values"]
        return {
            "pixel_values": pixels,
            "labels": torch.tensor([int(example["labels"]) for example in examples], dtype=torch.long),
        }


def build_collator(model_args: ModelArguments, model):
    """The checkpoint's own image processor when it has one, else `collate_images`."""
    if model_args.model_name_or_path:
        try:
            processor = AutoImageProcessor.from_pretrained(model_args.model_name_or_path)
        except OSError:
            logger.warning(f"{model_args.model_name_or_path} has no image processor: images are scaled to [-1, 1].")
        else:
            return ProcessorCollator(processor, num_channels=model.config.num_channels)
    return collate_images


def build_model(model_args: ModelArguments, labels: ClassLabel, num_channels: int, image_size: int = 28):
    id2label = dict(enumerate(labels.names))
    label2id = {name: i for i, name in id2label.items()}
    if model_args.model_name_or_path:
        config = AutoConfig.from_pretrained(
            model_args.model_name_or_path, num_labels=len(id2label), id2label=id2label, label2id=label2id
        )
        return AutoModelForImageClassification.from_pretrained(
            model_args.model_name_or_path, config=config, ignore_mismatched_sizes=True
        )
    if model_args.model_type == "vit":
        config = ViTConfig(
            image_size=image_size,
            patch_size=model_args.vit_patch_size,
            num_channels=num_channels,
            hidden_size=model_args.vit_hidden_size,
            num_hidden_layers=model_args.vit_layers,
            num_attention_heads=model_args.vit_heads,
            intermediate_size=2 * model_args.vit_hidden_size,
            num_labels=len(id2label),
            id2label=id2label,
            label2id=label2id,
        )
        return ViTForImageClassification(config)
    hidden_sizes = [int(x) for x in model_args.hidden_sizes.split(",")]
    depths = [int(x) for x in model_args.depths.split(",")]
    config = ResNetConfig(
        num_channels=num_channels,
        embedding_size=hidden_sizes[0],
        hidden_sizes=hidden_sizes,
        depths=depths,
        layer_type="basic",
        downsample_in_first_stage=False,
        num_labels=len(id2label),
        id2label=id2label,
        label2id=label2id,
    )
    return ResNetForImageClassification(config)


def train_and_test(name, trainer_cls, model_args, training_args, dataset) -> dict:
    """One full run: model from scratch (same seed), train, test. Returns the numbers to compare."""
    set_seed(training_args.seed)
    channels, height, _ = dataset["train"][0]["pixel_values"].shape
    model = build_model(model_args, dataset["train"].features["labels"], channels, image_size=height)
    trainer = trainer_cls(
        model=model,
        args=training_args,
        train_dataset=dataset["train"],
        eval_dataset=dataset["test"],
        data_collator=build_collator(model_args, model),
        compute_metrics=accuracy,
    )
    start = time.perf_counter()
    train_result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    train_seconds = time.perf_counter() - start
    trainer.save_model()
    trainer.log_metrics("train", train_result.metrics)
    trainer.save_metrics("train", train_result.metrics)
    metrics = trainer.evaluate(metric_key_prefix="test")
    trainer.log_metrics("test", metrics)
    trainer.save_metrics("test", metrics)
    trainer.save_state()
    extra = trainer.autoassist_metrics() if hasattr(trainer, "autoassist_metrics") else {}
    return {
        "trainer": name,
        "test_accuracy": metrics["test_accuracy"],
        "train_seconds": round(train_seconds, 1),
        "optimizer_steps": trainer.state.global_step,
        "kept_fraction_last_epoch": extra.get("autoassist/kept_fraction", 1.0),
        "instances_backpropagated": extra.get("autoassist/instances_backpropagated"),
        "assistant_seconds": extra.get("autoassist/assistant_seconds", 0.0),
    }


def main():
    # ---- parse -------------------------------------------------------------------------------------------------
    parser = HfArgumentParser((ModelArguments, DataTrainingArguments, AutoAssistConfig))
    if len(sys.argv) == 2 and sys.argv[1].endswith(".json"):
        model_args, data_args, training_args = parser.parse_json_file(json_file=os.path.abspath(sys.argv[1]))
    else:
        model_args, data_args, training_args = parser.parse_args_into_dataclasses()

    # ---- logging -----------------------------------------------------------------------------------------------
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%m/%d/%Y %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    log_level = training_args.get_process_log_level()
    logger.setLevel(log_level)
    transformers.utils.logging.set_verbosity(log_level)

    # ---- data --------------------------------------------------------------------------------------------------
    with training_args.main_process_first(desc="loading images"):
        if data_args.data_dir is not None:
            dataset = load_idx_dataset(data_args.data_dir)
        else:
            dataset = load_hub_dataset(data_args.dataset_name)
    if data_args.max_train_samples is not None:
        dataset["train"] = dataset["train"].shuffle(seed=training_args.seed).select(range(data_args.max_train_samples))
    if data_args.max_eval_samples is not None:
        dataset["test"] = dataset["test"].select(range(data_args.max_eval_samples))
    dataset = dataset.with_format("numpy")

    # ---- train and test ------------------------------------------------------------------------------------------
    runs = {"autoassist": AutoAssistTrainer, "plain": Trainer}
    names = list(runs) if model_args.trainer == "both" else [model_args.trainer]
    results = []
    base_output_dir = training_args.output_dir
    for name in names:
        if len(names) > 1:
            training_args.output_dir = os.path.join(base_output_dir, name)
        results.append(train_and_test(name, runs[name], model_args, training_args, dataset))

    # ---- report ------------------------------------------------------------------------------------------------
    if training_args.should_log:
        columns = {
            "trainer": "trainer",
            "test_accuracy": "test acc",
            "train_seconds": "train s",
            "optimizer_steps": "steps",
            "kept_fraction_last_epoch": "kept (last epoch)",
            "assistant_seconds": "assistant s",
        }
        print("\n" + report_side_by_side(results, columns, base_output_dir))
    PartialState().destroy_process_group()  # a gloo rank left in the group can abort at exit

if __name__ == "__main__":
    main()
