#!/usr/bin/env python
"""The paper's convex claim, measured: shrinking vs SGD vs SGD with importance sampling on linear SVMs.

    python examples/linear_svm/run_linear_svm.py --data_dir ../shared/data --output_dir examples/linear_svm/results

For each task it solves the problem tightly with liblinear (scikit-learn's LinearSVC) for the reference optimum,
runs every method for `--passes` passes of sampled instances with several seeds, and writes `results.json`
(traces, gradient evaluations to each gap, fitted rates) and `convergence.png` (gap vs gradient evaluations and vs
seconds, log-log, with an O(1/k) line).
"""

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from transformers import HfArgumentParser

sys.path.insert(0, str(Path(__file__).resolve().parent))
import svm  # noqa: E402

METHODS = {
    "sgd": dict(method="sgd"),
    "is_sgd": dict(method="is_sgd"),
    "shrinking (history)": dict(method="shrinking", assistant="history"),
    "shrinking (history, reweighted)": dict(method="shrinking", assistant="history", reweight=True),
    "shrinking (pixels)": dict(method="shrinking", assistant="pixels"),
    "shrinking (pixels, reweighted)": dict(method="shrinking", assistant="pixels", reweight=True),
}
TASKS = {
    "fashion pullover vs coat": ("fashion-mnist", [2], [4]),
    "fashion t-shirt vs shirt": ("fashion-mnist", [0], [6]),
    "mnist 8 vs rest": ("mnist", [8], None),
}


@dataclass
class ExperimentArguments:
    data_dir: str = field(default="../shared/data", metadata={"help": "Folder holding mnist/ and fashion-mnist/."})
    output_dir: str = field(default="examples/linear_svm/results", metadata={"help": "Where JSON and PNG go."})
    lam: float = field(default=1e-3, metadata={"help": "L2 regularisation (strong convexity) of the SVM."})
    passes: float = field(default=10.0, metadata={"help": "Sampled instances per run, in passes over the data."})
    seeds: int = field(default=3, metadata={"help": "Runs per method; the summary reports medians."})
    base_prob: float = field(default=0.3, metadata={"help": "Shrinking's acceptance floor (the paper's 0.3)."})
    gaps: str = field(default="1e-2,3e-3,1e-3", metadata={"help": "Objective gaps at which evaluations are counted."})
    tasks: str = field(default=",".join(TASKS), metadata={"help": "Comma-separated task names."})
    eval_points: int = field(default=120, metadata={"help": "Log-spaced checkpoints at which the objective is computed."})


def main():
    (args,) = HfArgumentParser(ExperimentArguments).parse_args_into_dataclasses()
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    targets = [float(g) for g in args.gaps.split(",")]
    results = {"arguments": asdict(args), "command": " ".join(["python", *sys.argv]), "tasks": {}}

    for task_name in args.tasks.split(","):
        folder, positive, negative = TASKS[task_name]
        task = svm.image_task(Path(args.data_dir) / folder, positive, negative, task_name)
        start = time.perf_counter()
        _, optimum = svm.reference_optimum(task, args.lam)
        print(f"{task_name}: n={len(task.y)} d={task.x.shape[1]} F*={optimum:.6f} ({time.perf_counter() - start:.1f} s)")
        iterations = int(args.passes * len(task.y))
        entry = {"n": len(task.y), "d": task.x.shape[1], "optimum": optimum, "methods": {}}
        for label, kwargs in METHODS.items():
            runs = [svm.run(task, lam=args.lam, iterations=iterations, seed=s, base_prob=args.base_prob, eval_points=args.eval_points, **kwargs) for s in range(args.seeds)]
            to_reach = {
                str(g): _median([svm.evaluations_to_reach(r, optimum + g) for r in runs]) for g in targets
            }
            slopes = [svm.fitted_slope(r.iterations, np.array(r.objective) - optimum) for r in runs]
            entry["methods"][label] = {
                "gradient_evaluations_to_gap": to_reach,
                "final_gap": float(np.median([r.objective[-1] - optimum for r in runs])),
                "gradient_evaluations": int(np.median([r.gradient_evaluations[-1] for r in runs])),
                "assistant_evaluations": int(np.median([r.assistant_evaluations[-1] for r in runs])),
                "seconds": float(np.median([r.seconds[-1] for r in runs])),
                "slope_vs_iterations": float(np.median(slopes)),
                "trace_seed0": asdict(runs[0]),
            }
            print(f"  {label:<33} evals to gap {to_reach}  final gap {entry['methods'][label]['final_gap']:.2e}")
        results["tasks"][task_name] = entry

    (output / "results.json").write_text(json.dumps(results, indent=1))
    plot(results, output / "convergence.png")


def _median(values):
    """Median over seeds, None if any seed never reached the gap (it would be at least the budget)."""
    return None if any(v is None for v in values) else int(np.median(values))


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = results["tasks"]
    fig, axes = plt.subplots(2, len(tasks), figsize=(5.5 * len(tasks), 8), squeeze=False)
    for col, (name, entry) in enumerate(tasks.items()):
        for label, method in entry["methods"].items():
            trace = method["trace_seed0"]
            gaps = np.maximum(np.array(trace["objective"]) - entry["optimum"], 1e-12)
            style = "--" if "reweighted" in label else "-"
            axes[0, col].loglog(trace["gradient_evaluations"], gaps, style, label=label)
            axes[1, col].loglog(trace["seconds"], gaps, style, label=label)
        k = np.array(entry["methods"]["sgd"]["trace_seed0"]["gradient_evaluations"], float)
        g = np.array(entry["methods"]["sgd"]["trace_seed0"]["objective"]) - entry["optimum"]
        axes[0, col].loglog(k, g[-1] * k[-1] / k, "k:", label="O(1/k)")
        axes[0, col].set_title(f"{name} (n={entry['n']})")
        axes[0, col].set_xlabel("gradient evaluations")
        axes[1, col].set_xlabel("seconds (Python loop, seed 0)")
        for row in range(2):
            axes[row, col].set_ylabel("F(w) - F*")
            axes[row, col].grid(True, which="both", alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(f"L2-regularised hinge SVM, lambda={results['arguments']['lam']}: weighted-average iterate")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
