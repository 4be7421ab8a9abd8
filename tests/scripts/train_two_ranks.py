"""Run by tests/test_distributed.py under `accelerate launch` or `torchrun` with 2 CPU processes (gloo).

    train_two_ranks.py OUTPUT_DIR '{"autoassist_strategy": "random", "gradient_accumulation_steps": 2, ...}'

Each rank trains a tiny ResNet on a Fashion-MNIST slice with AutoAssistTrainer, with the `AutoAssistConfig` options
given as JSON (and `resume_from_checkpoint` passed to `train()`), and writes, per epoch, the indices it
back-propagated and the indices the shared sampler kept, and a checksum of the final weights, to
`<output_dir>/rank-<r>.json`.
"""

import json
import sys
from pathlib import Path

from hf_autoassist import AutoAssistConfig, AutoAssistTrainer
from hf_autoassist.data import INDEX_KEY

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import DATA_DIR, load_example, tiny_resnet  # noqa: E402


class RecordingTrainer(AutoAssistTrainer):
    """Writes down which instances this rank trained on, epoch by epoch."""

    def training_step(self, model, inputs, *args, **kwargs):
        epoch = self.selection_run.sampler.epoch
        self.trained_indices.setdefault(epoch, []).extend(inputs[INDEX_KEY].tolist())
        self.kept_indices[epoch] = self.selection_run.sampler.kept.tolist()
        weights = self.selection_run.epoch_selection.loss_weights
        self.weight_sums[epoch] = None if weights is None else round(float(weights.sum()), 4)
        return super().training_step(model, inputs, *args, **kwargs)


def main(output_dir: str, options: dict) -> None:
    options = dict(options)
    resume = options.pop("resume_from_checkpoint", None)
    vision = load_example("examples/vision/run_image_classification.py")
    train = vision.load_idx_dataset(str(DATA_DIR / "fashion-mnist"))["train"].select(range(600)).with_format("numpy")
    args = AutoAssistConfig(
        output_dir=output_dir,
        use_cpu=True,  # without it each CPU rank would train alone on all the data
        report_to="none",
        per_device_train_batch_size=16,
        num_train_epochs=3,
        learning_rate=3e-3,
        logging_steps=5,
        disable_tqdm=True,
        seed=0,
        **{"save_strategy": "no", **options},
    )
    trainer = RecordingTrainer(model=tiny_resnet(), args=args, train_dataset=train, data_collator=vision.collate_images)
    trainer.trained_indices, trainer.kept_indices, trainer.weight_sums = {}, {}, {}
    trainer.train(resume_from_checkpoint=resume)
    assistant = trainer.selection_run.assistant
    record = {
        "rank": args.process_index,
        "world_size": args.world_size,
        "global_step": trainer.state.global_step,
        "max_steps": trainer.state.max_steps,
        "trained": trainer.trained_indices,
        "kept": trainer.kept_indices,
        "weight_sums": trainer.weight_sums,
        # instances the deciding rank's loss memory knows (merged from both ranks before each decision)
        "memory_seen": int((assistant.last_clock >= 0).sum()) if hasattr(assistant, "last_clock") else None,
        "weights": [round(float(p.double().sum()), 6) for p in trainer.model.parameters()],
    }
    Path(output_dir, f"rank-{args.process_index}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main(sys.argv[1], json.loads(sys.argv[2]) if len(sys.argv) > 2 else {})
