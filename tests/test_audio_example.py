"""The audio example: synthetic tones classified by a small Wav2Vec2 on raw waveforms, a set with neither images nor
tokens, trained as a user would train it (in process, a few seconds per run)."""

import numpy as np
import pytest

from benchmarks.tasks import load_example

COMMON = ["--train_samples", "512", "--test_samples", "128", "--clip_seconds", "0.25", "--num_train_epochs", "6",
          "--per_device_train_batch_size", "32", "--learning_rate", "2e-3", "--report_to", "none",
          "--save_strategy", "no", "--eval_strategy", "no", "--disable_tqdm", "true", "--use_cpu", "true"]  # fmt: skip


@pytest.fixture(scope="module")
def example():
    return load_example("examples/audio/run_audio_classification.py")


def test_tones_are_seeded_and_each_class_is_its_pitch_band(example):
    first = example.synthetic_tones(64, 4, 0.25, 16000, seed=3)
    assert first["audio"] == example.synthetic_tones(64, 4, 0.25, 16000, seed=3)["audio"]
    assert first["audio"] != example.synthetic_tones(64, 4, 0.25, 16000, seed=4)["audio"]
    assert len(first[0]["audio"]) == 4000 and first.features["label"].names[0].endswith("Hz")
    # the strongest frequency of a clean-enough clip lies in (or at the edge of) its class's band
    edges = np.geomspace(example.LOWEST_PITCH, example.HIGHEST_PITCH, 5)
    inside = []
    for row in first:
        spectrum = np.abs(np.fft.rfft(row["audio"]))
        peak = np.argmax(spectrum) * 16000 / len(row["audio"])
        inside.append(edges[row["label"]] - 8 <= peak <= edges[row["label"] + 1] + 8)
    assert np.mean(inside) > 0.75  # the rest are clips deep in the noise


def test_none_trains_exactly_as_the_plain_trainer_and_autoassist_reads_the_boss_features(example, tmp_path):
    autoassist, plain = example.main(
        ["--output_dir", str(tmp_path / "none"), "--trainer", "both", "--autoassist_strategy", "none", *COMMON]
    )
    assert autoassist["test_accuracy"] == plain["test_accuracy"]
    assert autoassist["optimizer_steps"] == plain["optimizer_steps"]
    autoassist, plain = example.main(
        ["--output_dir", str(tmp_path / "aa"), "--trainer", "both", "--autoassist_strategy", "autoassist", *COMMON]
    )
    assert autoassist["optimizer_steps"] < plain["optimizer_steps"] and autoassist["kept_fraction_last_epoch"] < 1.0
    assert autoassist["test_accuracy"] > 0.5 and plain["test_accuracy"] > 0.5  # chance is 1 / 8


def test_a_saved_checkpoint_is_fine_tuned_through_its_own_feature_extractor(example, tmp_path):
    """The "fine-tune a Hub model" path, offline: a checkpoint saved with `save_pretrained` (model and feature
    extractor), loaded by `--model_name_or_path` with a new number of classes."""
    from transformers import HfArgumentParser

    model_args, data_args = HfArgumentParser((example.ModelArguments, example.DataArguments)).parse_args_into_dataclasses(
        ["--num_classes", "3"]
    )
    labels = example.synthetic_tones(8, 3, 0.25, 16000, seed=0).features["label"]
    model, extractor = example.build_model_and_extractor(model_args, labels, 16000)
    model.save_pretrained(tmp_path / "checkpoint")
    extractor.save_pretrained(tmp_path / "checkpoint")
    (row,) = example.main(["--output_dir", str(tmp_path / "run"), "--model_name_or_path", str(tmp_path / "checkpoint"),
                           "--num_classes", "4", *COMMON])  # fmt: skip
    assert row["trainer"] == "autoassist" and row["test_accuracy"] > 0.25  # chance is 1 / 4


def test_a_checkpoint_at_another_sampling_rate_names_the_option(example, tmp_path):
    from transformers import HfArgumentParser

    model_args, _ = HfArgumentParser((example.ModelArguments, example.DataArguments)).parse_args_into_dataclasses([])
    labels = example.synthetic_tones(8, 8, 0.25, 16000, seed=0).features["label"]
    model, extractor = example.build_model_and_extractor(model_args, labels, 24000)
    model.save_pretrained(tmp_path / "checkpoint")
    extractor.save_pretrained(tmp_path / "checkpoint")
    with pytest.raises(ValueError, match="--sampling_rate 24000"):
        example.main(["--output_dir", str(tmp_path / "run"), "--model_name_or_path", str(tmp_path / "checkpoint"),
                      *COMMON])  # fmt: skip


def test_tones_need_a_sampling_rate_that_carries_their_harmonics(example):
    with pytest.raises(ValueError, match="at least 12000"):
        example.DataArguments(sampling_rate=8000)
