#!/usr/bin/env python
"""Audio classification with AutoAssistTrainer: a Wav2Vec2 model on raw waveforms, so that a set with neither
images nor tokens is trained as `transformers`' `run_audio_classification.py` trains it.

Offline (the default) the clips are synthetic tones: each class is a band of pitch, each clip a fundamental in its
class's band with two harmonics, a random attack, phase and gain, in white noise at a random signal-to-noise ratio,
so that some clips are easy and some hard (a pitch near its band's edge, or deep in the noise). A small Wav2Vec2 is built from a `Wav2Vec2Config`:

    python examples/audio/run_audio_classification.py --output_dir outputs/audio --trainer both \
        --num_train_epochs 10 --per_device_train_batch_size 32 --learning_rate 1e-3 --report_to none --use_cpu

Online, `--dataset_name` (e.g. `google/speech_commands --dataset_config_name v0.02`) and `--model_name_or_path`
(e.g. `facebook/wav2vec2-base`) take the usual Hub paths. The Assistant reads the Boss's own representation
(`autoassist_assistant="auto"` picks `boss_features` for `input_values`: the input of the classifier, recorded in the
training forward); each instance's loss is its cross entropy.
"""

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import transformers
from accelerate import PartialState
from datasets import Audio, ClassLabel, Dataset, DatasetDict, Features, Sequence, Value, load_dataset
from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModelForAudioClassification,
    HfArgumentParser,
    Trainer,
    Wav2Vec2Config,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2ForSequenceClassification,
    set_seed,
)

from hf_autoassist import AutoAssistConfig, AutoAssistTrainer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from comparison import accuracy, report_side_by_side, run_each, train_and_test  # noqa: E402

logger = logging.getLogger(__name__)

# the tones' pitch range: class bands are log-spaced between these (Hz), well under the Nyquist frequency of 16 kHz
LOWEST_PITCH, HIGHEST_PITCH = 150.0, 3000.0


@dataclass
class DataArguments:
    """Where the clips come from."""

    dataset_name: str | None = field(
        default=None,
        metadata={"help": "A Hub dataset with an audio and a class-label column (needs network access); default: "
                  "synthetic tones."},  # fmt: skip
    )
    dataset_config_name: str | None = field(default=None, metadata={"help": "The Hub dataset's configuration."})
    audio_column_name: str = field(default="audio", metadata={"help": "The Hub dataset's audio column."})
    label_column_name: str = field(default="label", metadata={"help": "The Hub dataset's class-label column."})
    num_classes: int = field(default=8, metadata={"help": "Tones: pitch bands, one class each."})
    train_samples: int = field(default=2000, metadata={"help": "Tones: training clips."})
    test_samples: int = field(default=500, metadata={"help": "Tones: test clips."})
    clip_seconds: float = field(
        default=0.5, metadata={"help": "Length of every clip: tones are made this long, Hub clips cut to it."}
    )
    sampling_rate: int = field(default=16000, metadata={"help": "Tones: samples per second (a checkpoint's own wins)."})
    tones_seed: int = field(default=1234, metadata={"help": "Tones: seed of the clips (the test clips draw from +1)."})

    def __post_init__(self):
        if self.num_classes < 2:
            raise ValueError(f"--num_classes must be at least 2, got {self.num_classes}.")
        if self.clip_seconds <= 0:
            raise ValueError(f"--clip_seconds must be positive, got {self.clip_seconds}.")
        if self.dataset_name is None and self.sampling_rate < 4 * HIGHEST_PITCH:
            raise ValueError(
                f"--sampling_rate {self.sampling_rate} cannot carry the tones' harmonics (up to "
                f"{3 * HIGHEST_PITCH:.0f} Hz): use at least {4 * HIGHEST_PITCH:.0f}."
            )


@dataclass
class ModelArguments:
    """Which model to train, and with which trainer."""

    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "A Hub id or local folder to fine-tune. Without it a small Wav2Vec2 is built from a config."},
    )
    freeze_feature_encoder: bool = field(
        default=True, metadata={"help": "Fine-tuning a checkpoint: keep its convolutional feature encoder frozen."}
    )
    hidden_size: int = field(default=64, metadata={"help": "Wav2Vec2 width when built from a config."})
    num_hidden_layers: int = field(default=2, metadata={"help": "Transformer layers when built from a config."})
    trainer: str = field(
        default="autoassist",
        metadata={"help": "'autoassist', 'plain' (transformers.Trainer), or 'both' with the same seed, side by side.",
                  "choices": ["autoassist", "plain", "both"]},  # fmt: skip
    )


def synthetic_tones(count: int, num_classes: int, seconds: float, sampling_rate: int, seed: int) -> Dataset:
    """`count` clips with `audio` (float32 waveform) and `label` (the pitch band of its fundamental)."""
    rng = np.random.default_rng(seed)
    edges = np.geomspace(LOWEST_PITCH, HIGHEST_PITCH, num_classes + 1)
    time_axis = np.arange(round(seconds * sampling_rate)) / sampling_rate
    labels = rng.integers(num_classes, size=count)
    clips = np.empty((count, len(time_axis)), dtype=np.float32)
    for i, label in enumerate(labels):
        # a pitch anywhere in its band (uniform in log frequency): near an edge it is hard to tell from the next band
        pitch = np.exp(rng.uniform(np.log(edges[label]), np.log(edges[label + 1])))
        harmonics = sum(
            amplitude * np.sin(2 * np.pi * k * pitch * time_axis + rng.uniform(0, 2 * np.pi))
            for k, amplitude in zip((1, 2, 3), (1.0, rng.uniform(0, 0.6), rng.uniform(0, 0.3)))
        )
        attack = np.clip(time_axis / rng.uniform(0.005, seconds / 2), 0, 1)
        signal = rng.uniform(0.2, 1.0) * attack * harmonics
        # white noise at a signal-to-noise ratio drawn between -10 and 20 dB: the hard clips are the noisy ones
        noise_power = np.mean(signal**2) / 10 ** (rng.uniform(-10, 20) / 10)
        clips[i] = signal + rng.normal(0, np.sqrt(noise_power), len(time_axis))
    names = [f"{edges[c]:.0f}-{edges[c + 1]:.0f} Hz" for c in range(num_classes)]
    features = Features({"audio": Sequence(Value("float32")), "label": ClassLabel(names=names)})
    return Dataset.from_dict({"audio": list(clips), "label": labels.tolist()}, features=features)


def load_clips(data_args: DataArguments) -> DatasetDict:
    """`train` and `test` splits with `audio` (a waveform at `--sampling_rate`) and `label` (a `ClassLabel`)."""
    sampling_rate = data_args.sampling_rate
    if data_args.dataset_name is None:
        return DatasetDict({
            split: synthetic_tones(count, data_args.num_classes, data_args.clip_seconds, sampling_rate,
                                   data_args.tones_seed + offset)
            for split, count, offset in (("train", data_args.train_samples, 0), ("test", data_args.test_samples, 1))
        })  # fmt: skip
    raw = load_dataset(data_args.dataset_name, data_args.dataset_config_name)
    if "train" not in raw or not ({"test", "validation"} & set(raw)):
        raise ValueError(f"{data_args.dataset_name} needs a train split and a test or validation split; it has {list(raw)}.")
    raw = DatasetDict({"train": raw["train"], "test": raw["test"] if "test" in raw else raw["validation"]})
    for column in (data_args.audio_column_name, data_args.label_column_name):
        if column not in raw["train"].column_names:
            raise ValueError(
                f"{data_args.dataset_name} has no column {column!r}; its columns are {raw['train'].column_names} "
                "(--audio_column_name, --label_column_name)."
            )
    raw = raw.cast_column(data_args.audio_column_name, Audio(sampling_rate=sampling_rate))
    raw = raw.rename_columns({data_args.audio_column_name: "audio", data_args.label_column_name: "label"})

    def waveforms(batch):
        return {"audio": [np.asarray(audio["array"], dtype=np.float32) for audio in batch["audio"]]}

    return raw.map(waveforms, batched=True, desc="Decoding audio")


def build_model_and_extractor(model_args: ModelArguments, labels: ClassLabel, sampling_rate: int):
    id2label = dict(enumerate(labels.names))
    label2id = {name: i for i, name in id2label.items()}
    if model_args.model_name_or_path:
        config = AutoConfig.from_pretrained(
            model_args.model_name_or_path, num_labels=len(id2label), id2label=id2label, label2id=label2id
        )
        model = AutoModelForAudioClassification.from_pretrained(
            model_args.model_name_or_path, config=config, ignore_mismatched_sizes=True
        )
        if model_args.freeze_feature_encoder and hasattr(model, "freeze_feature_encoder"):
            model.freeze_feature_encoder()
        return model, AutoFeatureExtractor.from_pretrained(model_args.model_name_or_path)
    config = Wav2Vec2Config(
        hidden_size=model_args.hidden_size,
        num_hidden_layers=model_args.num_hidden_layers,
        num_attention_heads=4,
        intermediate_size=2 * model_args.hidden_size,
        # four convolutions with wav2vec2's receptive field per layer and its overall stride of 320 (20 ms at 16 kHz)
        conv_dim=(32, 32, 32, 32),
        conv_stride=(5, 4, 4, 4),
        conv_kernel=(10, 8, 8, 8),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        mask_time_prob=0.0,  # a clip of a few dozen frames has too few to mask spans of 10
        classifier_proj_size=model_args.hidden_size,
        num_labels=len(id2label),
        id2label=id2label,
        label2id=label2id,
    )
    extractor = Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=sampling_rate, padding_value=0.0, do_normalize=True, return_attention_mask=False
    )
    return Wav2Vec2ForSequenceClassification(config), extractor


def extract(clips: DatasetDict, extractor, seconds: float) -> DatasetDict:
    """`input_values` (each clip normalised by the feature extractor, cut or padded to `seconds`) and `labels`."""
    length = round(seconds * extractor.sampling_rate)

    def features(batch):
        inputs = extractor(
            batch["audio"], sampling_rate=extractor.sampling_rate, max_length=length, truncation=True,
            padding="max_length",
        )  # fmt: skip
        return {"input_values": inputs["input_values"], "labels": batch["label"]}

    columns = clips["train"].column_names
    return clips.map(features, batched=True, remove_columns=columns, desc="Extracting features").with_format("torch")


def build_and_run(name, trainer_cls, model_args, data_args, training_args, clips: DatasetDict) -> dict:
    """One full run: model from scratch or the checkpoint (same seed), train, test."""
    set_seed(training_args.seed)
    model, extractor = build_model_and_extractor(model_args, clips["train"].features["label"], data_args.sampling_rate)
    if extractor.sampling_rate != data_args.sampling_rate:
        raise ValueError(
            f"{model_args.model_name_or_path} expects audio at {extractor.sampling_rate} Hz; pass --sampling_rate "
            f"{extractor.sampling_rate}."
        )
    splits = extract(clips, extractor, data_args.clip_seconds)
    trainer = trainer_cls(
        model=model, args=training_args, train_dataset=splits["train"], eval_dataset=splits["test"],
        compute_metrics=accuracy,
    )  # fmt: skip
    return train_and_test(name, trainer, ("test_accuracy",), training_args.resume_from_checkpoint)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = HfArgumentParser((ModelArguments, DataArguments, AutoAssistConfig))
    model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    transformers.utils.logging.set_verbosity(training_args.get_process_log_level())

    with training_args.main_process_first(desc="making or loading the clips"):
        clips = load_clips(data_args)
    runs = {"autoassist": AutoAssistTrainer, "plain": Trainer}
    results = run_each(
        model_args.trainer, runs, training_args,
        lambda name, trainer_cls: build_and_run(name, trainer_cls, model_args, data_args, training_args, clips),
    )  # fmt: skip
    if training_args.should_log:
        columns = {"trainer": "trainer", "test_accuracy": "test acc", "train_seconds": "train s",
                   "optimizer_steps": "steps", "kept_fraction_last_epoch": "kept (last epoch)",
                   "assistant_seconds": "assistant s"}  # fmt: skip
        print("\n" + report_side_by_side(results, columns, training_args.output_dir))
    PartialState().destroy_process_group()  # a gloo rank left in the group can abort at exit
    return results


if __name__ == "__main__":
    main()
