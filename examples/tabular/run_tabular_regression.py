#!/usr/bin/env python
"""Tabular regression with AutoAssistTrainer: a small MLP on scikit-learn's bundled diabetes data (no download) or
any CSV file, so that a set with neither images nor tokens is trained as a user would train it.

    python examples/tabular/run_tabular_regression.py --output_dir outputs/diabetes --trainer both \
        --num_train_epochs 60 --per_device_train_batch_size 32 --learning_rate 3e-3 --report_to none

The Assistant reads the Boss's own representation (`autoassist_assistant="auto"` picks `boss_features` here: the
input of the MLP's last layer, recorded in the training forward); each instance's loss is its squared error.
"""

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import transformers
from accelerate import PartialState
from datasets import Dataset
from torch import nn
from transformers import HfArgumentParser, Trainer, set_seed

from hf_autoassist import AutoAssistConfig, AutoAssistTrainer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from comparison import report_side_by_side, run_each, train_and_test  # noqa: E402

logger = logging.getLogger(__name__)


@dataclass
class DataArguments:
    """Where the rows come from."""

    dataset: str = field(
        default="diabetes",
        metadata={"help": "'diabetes' (scikit-learn's bundled set, 442 patients, 10 features) or 'csv'.",
                  "choices": ["diabetes", "csv"]},  # fmt: skip
    )
    train_file: str | None = field(default=None, metadata={"help": "With --dataset csv: a CSV of numeric columns."})
    target_column: str | None = field(default=None, metadata={"help": "With --dataset csv: the column to predict."})
    test_fraction: float = field(default=0.2, metadata={"help": "Share of the rows held out for the test."})

    def __post_init__(self):
        if self.dataset == "csv" and (self.train_file is None or self.target_column is None):
            raise ValueError("--dataset csv needs --train_file (a CSV of numeric columns) and --target_column.")
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError(f"--test_fraction must be in (0, 1), got {self.test_fraction}.")


@dataclass
class ModelArguments:
    hidden_size: int = field(default=64, metadata={"help": "Width of the MLP's two hidden layers."})
    trainer: str = field(
        default="autoassist",
        metadata={"help": "'autoassist', 'plain' (transformers.Trainer), or 'both' with the same seed, side by side.",
                  "choices": ["autoassist", "plain", "both"]},  # fmt: skip
    )


class MLPRegressor(nn.Module):
    """Two hidden layers and a linear head; `{"loss", "logits"}` as transformers' heads return them."""

    def __init__(self, num_features: int, hidden_size: int = 64):
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(num_features, hidden_size), nn.GELU(), nn.Linear(hidden_size, hidden_size), nn.GELU()
        )
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, features, labels=None):
        logits = self.head(self.body(features)).squeeze(-1)
        loss = None if labels is None else nn.functional.mse_loss(logits, labels)
        return {"loss": loss, "logits": logits}


def load_rows(data_args: DataArguments) -> tuple[np.ndarray, np.ndarray]:
    """Features `(N, F)` and targets `(N,)`, as float32."""
    if data_args.dataset == "diabetes":
        from sklearn.datasets import load_diabetes

        x, y = load_diabetes(return_X_y=True)
    else:
        table = Dataset.from_csv(data_args.train_file)
        if data_args.target_column not in table.column_names:
            raise ValueError(
                f"{data_args.train_file} has no column {data_args.target_column!r}; its columns are "
                f"{table.column_names}."
            )
        y = np.asarray(table[data_args.target_column], dtype=np.float64)
        features = [c for c in table.column_names if c != data_args.target_column]
        x = np.stack([np.asarray(table[c], dtype=np.float64) for c in features], 1)
    return x.astype(np.float32), y.astype(np.float32)


def split_and_standardize(x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int) -> dict[str, Dataset]:
    """A seeded train / test split, features and target standardized with the training rows' statistics (so the
    losses, and the test MSE, are in units of the target's spread)."""
    order = np.random.default_rng(seed).permutation(len(y))
    cut = len(y) - max(1, round(test_fraction * len(y)))
    train, test = order[:cut], order[cut:]
    mean, std = x[train].mean(0), x[train].std(0) + 1e-8
    y_mean, y_std = y[train].mean(), y[train].std() + 1e-8
    rows = lambda idx: {"features": (x[idx] - mean) / std, "labels": (y[idx] - y_mean) / y_std}  # noqa: E731
    return {name: Dataset.from_dict(rows(idx)).with_format("torch") for name, idx in (("train", train), ("test", test))}


def compute_metrics(eval_pred) -> dict[str, float]:
    from sklearn.metrics import mean_squared_error, r2_score

    predictions, labels = eval_pred
    return {"mse": float(mean_squared_error(labels, predictions)), "r2": float(r2_score(labels, predictions))}


def build_and_run(name, trainer_cls, model_args, training_args, splits) -> dict:
    """One full run: model from scratch (same seed), train, test."""
    set_seed(training_args.seed)
    model = MLPRegressor(splits["train"][0]["features"].shape[0], model_args.hidden_size)
    trainer = trainer_cls(
        model=model, args=training_args, train_dataset=splits["train"], eval_dataset=splits["test"],
        compute_metrics=compute_metrics,
    )  # fmt: skip
    return train_and_test(name, trainer, ("test_mse", "test_r2"), training_args.resume_from_checkpoint)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = HfArgumentParser((ModelArguments, DataArguments, AutoAssistConfig))
    model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    transformers.utils.logging.set_verbosity(training_args.get_process_log_level())

    splits = split_and_standardize(*load_rows(data_args), data_args.test_fraction, training_args.seed)
    runs = {"autoassist": AutoAssistTrainer, "plain": Trainer}
    results = run_each(
        model_args.trainer, runs, training_args,
        lambda name, trainer_cls: build_and_run(name, trainer_cls, model_args, training_args, splits),
    )  # fmt: skip
    if training_args.should_log:
        columns = {"trainer": "trainer", "test_mse": "test MSE", "test_r2": "test R2", "train_seconds": "train s",
                   "optimizer_steps": "steps", "kept_fraction_last_epoch": "kept (last epoch)"}  # fmt: skip
        print("\n" + report_side_by_side(results, columns, training_args.output_dir))
    PartialState().destroy_process_group()  # a gloo rank left in the group can abort at exit
    return results


if __name__ == "__main__":
    main()
