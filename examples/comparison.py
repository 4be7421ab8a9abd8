"""Training and printing several runs of one example side by side, the same way in every example (shared by the
example scripts, not part of the library)."""

import json
import os
import time

import numpy as np


def report_side_by_side(rows: list[dict], columns: dict[str, str], output_dir: str) -> str:
    """A fixed-width table of `rows` (one dict per run) over `columns` (key -> header), also saved as
    `comparison.json` in `output_dir`. Returns the table."""
    widths = {key: max(len(header), *(len(_cell(row.get(key))) for row in rows)) for key, header in columns.items()}
    lines = [" ".join(header.rjust(widths[key]) for key, header in columns.items())]
    lines += [" ".join(_cell(row.get(key)).rjust(widths[key]) for key in columns) for row in rows]
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, "comparison.json"), "w") as f:
        json.dump(rows, f, indent=2)
    return "\n".join(lines)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def run_each(choice: str, runs: dict, training_args, train_one) -> list[dict]:
    """`train_one(name, trainer_class)` for the chosen trainer, or for each of `runs` with `choice="both"`, each in
    its own subfolder of `output_dir` (given back as it was). Returns their rows."""
    names = list(runs) if choice == "both" else [choice]
    base_output_dir, results = training_args.output_dir, []
    for name in names:
        if len(names) > 1:
            training_args.output_dir = os.path.join(base_output_dir, name)
        results.append(train_one(name, runs[name]))
    training_args.output_dir = base_output_dir
    return results


def accuracy(eval_pred) -> dict[str, float]:
    """`compute_metrics` for classification: `evaluate.load("accuracy")` needs the Hub, and accuracy is one line."""
    return {"accuracy": float((np.argmax(eval_pred.predictions, axis=1) == eval_pred.label_ids).mean())}


def train_and_test(name: str, trainer, test_metrics: tuple[str, ...], resume_from_checkpoint=None) -> dict:
    """Trains `trainer`, evaluates it on its eval set as the test, and returns the run's row: `test_metrics`, the
    training seconds and optimizer steps, and what AutoAssist kept (the plain Trainer keeps everything)."""
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    train_seconds = time.perf_counter() - start
    metrics = trainer.evaluate(metric_key_prefix="test")
    trainer.log_metrics("test", metrics)
    trainer.save_metrics("test", metrics)
    extra = trainer.autoassist_metrics() if hasattr(trainer, "autoassist_metrics") else {}
    return {
        "trainer": name,
        **{key: metrics[key] for key in test_metrics},
        "train_seconds": round(train_seconds, 1),
        "optimizer_steps": trainer.state.global_step,
        "kept_fraction_last_epoch": extra.get("autoassist/kept_fraction", 1.0),
        "instances_backpropagated": extra.get("autoassist/instances_backpropagated"),
        "assistant_seconds": extra.get("autoassist/assistant_seconds", 0.0),
    }
