"""The user-facing scripts, run as a user runs them (a minute or less each on 2 CPU cores)."""

import json
import subprocess
import sys

import pytest

from conftest import DATA_DIR, REPO

pytestmark = pytest.mark.slow


def run_vision(tmp_path, *extra):
    command = [
        sys.executable, str(REPO / "examples/vision/run_image_classification.py"),
        "--data_dir", str(DATA_DIR / "fashion-mnist"), "--output_dir", str(tmp_path),
        "--max_train_samples", "1500", "--max_eval_samples", "500", "--num_train_epochs", "2",
        "--per_device_train_batch_size", "64", "--learning_rate", "3e-3", "--save_strategy", "no",
        "--report_to", "none", "--disable_tqdm", "true", "--use_cpu", *extra,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def test_vision_example_compares_both_trainers_side_by_side(tmp_path):
    # the default (`adaptive`), with a margin wide enough that a short run already thins its batches, and its floor
    # not raised by the recipe's length (2 epochs: the default's own floor keeps everything on so short a recipe)
    result = run_vision(
        tmp_path, "--trainer", "both", "--autoassist_learned_margin", "1.0", "--autoassist_learned_visits", "0"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "test acc" in result.stdout and "kept (last epoch)" in result.stdout
    rows = {row["trainer"]: row for row in json.loads((tmp_path / "comparison.json").read_text())}
    assert set(rows) == {"autoassist", "plain"}
    assert rows["autoassist"]["kept_fraction_last_epoch"] < 1.0
    assert rows["autoassist"]["optimizer_steps"] == rows["plain"]["optimizer_steps"]  # thinner batches, same steps
    for row in rows.values():
        assert row["test_accuracy"] > 0.4  # chance is 0.1
    # each run saved a model that loads back
    assert (tmp_path / "autoassist" / "config.json").is_file()


def test_vision_example_names_the_missing_file(tmp_path):
    result = run_vision(tmp_path, "--data_dir", str(tmp_path), "--trainer", "plain")
    assert result.returncode != 0
    assert "has no train-images-idx3-ubyte.gz" in result.stderr


def test_vision_example_builds_a_vit_from_a_config(tmp_path):
    result = run_vision(tmp_path, "--trainer", "autoassist", "--model_type", "vit", "--vit_layers", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "vit" and config["patch_size"] == 7 and config["num_hidden_layers"] == 1
    (row,) = json.loads((tmp_path / "comparison.json").read_text())
    assert row["test_accuracy"] > 0.3  # chance is 0.1


def test_vision_example_fine_tunes_a_saved_checkpoint_through_its_image_processor(tmp_path):
    """As with a Hub id: a 3-channel 32x32 ViT and its processor; the grey 28x28 images are resized and repeated."""
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    checkpoint = tmp_path / "checkpoint"
    ViTForImageClassification(ViTConfig(image_size=32, patch_size=8, num_channels=3, hidden_size=32, num_hidden_layers=1,
                                        num_attention_heads=2, intermediate_size=64, num_labels=2)).save_pretrained(checkpoint)  # fmt: skip
    ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.5] * 3, image_std=[0.5] * 3).save_pretrained(checkpoint)
    result = run_vision(tmp_path / "run", "--trainer", "autoassist", "--model_name_or_path", str(checkpoint))
    assert result.returncode == 0, result.stderr[-3000:]
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert len(config["id2label"]) == 10 and config["image_size"] == 32  # a new head for the 10 classes
    (row,) = json.loads((tmp_path / "run" / "comparison.json").read_text())
    assert row["test_accuracy"] > 0.3  # chance is 0.1
