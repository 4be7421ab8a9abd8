"""Irreducible losses for `autoassist_label="reducible"` and `"learnable"` (RHO-LOSS: Mindermann et al., ICML 2022,
arXiv 2206.07137) and for `autoassist_implausible_keep_prob`.

An instance's *reducible* loss is its training loss minus its *irreducible* loss, the loss of a model that learned
the task without ever seeing that instance. A mislabelled image or a misaligned pair has a high loss under both
(nothing that generalizes is left to learn from it); an instance the Boss already knows has a low loss under both;
one still worth training on has a high training loss and a low irreducible loss.

The irreducible losses are cross-fitted, so that every instance is scored out of sample while the Boss still trains
on all of them: the training set is split into `round(1 / fraction)` folds, a copy of the Boss at its starting
weights (or `irreducible_model_init()`) is trained on each fold with the plain `Trainer`, and it scores every
instance of the other folds; an instance's irreducible loss is the mean of its out-of-sample scores. This runs inside
`train()`, so its time is part of the run's. The losses can be written to a file and read back by a later run of the
same data and settings.
"""

import copy
import json
import math
import os
import time
from dataclasses import asdict, dataclass, replace

import torch
from torch.utils.data import DataLoader, Subset
from transformers import Trainer
from transformers.utils import is_datasets_available, logging

from .checkpoint import read_state
from .losses import per_instance_loss_terms

if is_datasets_available():
    import datasets

logger = logging.get_logger(__name__)


@dataclass
class IrreducibleLosses:
    """Each training instance's out-of-sample loss, and how good the models that gave them were.

    heldout_loss / heldout_accuracy: mean loss and accuracy (of class ids, or of target tokens) of the fold models
    on the instances they did not train on, against the training set's own labels (a noisy set lowers it).
    num_classes: the models' number of classes for a classification set, None for sequences.
    """

    losses: torch.Tensor
    folds: int
    epochs: float
    heldout_loss: float
    heldout_accuracy: float | None
    instances: int  # the models' training instances (forward and backward), to add to the Boss's
    seconds: float
    fingerprint: str
    num_classes: int | None = None
    source: str = "computed"  # "computed", or the cache file / checkpoint it was read from

    def implausible(self) -> torch.Tensor | None:
        """`(N,)`: the instances whose label the models found less likely than a uniform guess over the classes
        (loss above `log(num_classes)`), mostly wrong labels; None for sequences, where no such line exists."""
        if self.num_classes is None or self.num_classes < 2:
            return None
        return self.losses > math.log(self.num_classes)

    def summary(self) -> dict:
        summary = {k: v for k, v in asdict(self).items() if k != "losses"}
        implausible = self.implausible()
        if implausible is not None:
            summary["implausible_fraction"] = round(float(implausible.float().mean()), 4)
        return summary


def fold_ids(num_instances: int, folds: int, seed: int) -> torch.Tensor:
    """Fold of each instance, `(num_instances,)`: a seeded shuffle cut into `folds` near-equal parts.

    Example:
        >>> ids = fold_ids(10, 3, seed=0); sorted(ids.bincount().tolist())
        [3, 3, 4]
    """
    order = torch.randperm(num_instances, generator=torch.Generator().manual_seed(seed))
    ids = torch.empty(num_instances, dtype=torch.long)
    ids[order] = torch.arange(num_instances) % folds
    return ids


def _subset(dataset, indices: list[int]):
    if is_datasets_available() and isinstance(dataset, datasets.Dataset):
        return dataset.select(indices)
    return Subset(dataset, indices)


def dataset_fingerprint(dataset) -> str:
    """What identifies the training set for the cache: `datasets`' own fingerprint, else its length and type."""
    return getattr(dataset, "_fingerprint", None) or f"{type(dataset).__name__}-{len(dataset)}"


class IrreducibleLossModel:
    """Trains the fold models and scores the instances; one instance per `train()` of an AutoAssist trainer.

    Args:
        args: the run's training arguments (`autoassist_irreducible_*`, the seed, batch sizes, label smoothing);
            each fold model trains with them, shortened.
        boss (`PreTrainedModel`): the Boss at its starting weights.
        is_causal_lm (`Callable[[model], bool]`): whether a model's labels are next tokens.
        model_init (`Callable[[], PreTrainedModel]`, *optional*): builds a fresh (e.g. smaller) model for each fold;
            by default a copy of the Boss as it is before training.
    """

    def __init__(self, args, boss, is_causal_lm, model_init=None):
        self.args = args
        self.boss = boss
        self.is_causal_lm = is_causal_lm
        self.folds = max(2, round(1.0 / args.autoassist_irreducible_fraction))
        self.epochs = args.autoassist_irreducible_epochs
        self.seed = args.seed
        self.model_init = model_init

    def fingerprint(self, dataset) -> str:
        model_config = getattr(self.boss, "config", None)
        return json.dumps(
            {
                "data": dataset_fingerprint(dataset),
                "instances": len(dataset),
                "model": model_config.to_json_string(use_diff=True) if model_config is not None else None,
                "folds": self.folds,
                "epochs": self.epochs,
                "seed": self.seed,
                "label_smoothing": self.args.label_smoothing_factor,
            },
            sort_keys=True,
        )

    def compute(self, dataset, collator) -> IrreducibleLosses:
        start = time.perf_counter()
        model_init = self.model_init
        if model_init is None:  # the Boss as it is before training, copied for each fold
            boss = copy.deepcopy(self.boss)
            model_init = lambda: copy.deepcopy(boss)  # noqa: E731
        folds = fold_ids(len(dataset), self.folds, self.seed)
        totals, counts = torch.zeros(len(dataset)), torch.zeros(len(dataset))
        heldout_loss = heldout_hits = heldout_terms = 0.0
        trained, num_classes = 0, None
        for fold in range(self.folds):
            model, instances = self._train_fold(
                model_init, fold, (folds == fold).nonzero().squeeze(1).tolist(), dataset, collator
            )
            trained += instances
            others = (folds != fold).nonzero().squeeze(1)
            losses, hits, terms, num_classes = self._score(model, others.tolist(), dataset, collator)
            totals[others] += losses
            counts[others] += 1
            heldout_loss += float(losses.sum())
            heldout_hits, heldout_terms = heldout_hits + hits, heldout_terms + terms
            del model
        scored = float(counts.sum())
        return IrreducibleLosses(
            losses=totals / counts.clamp(min=1),
            folds=self.folds,
            epochs=self.epochs,
            heldout_loss=round(heldout_loss / scored, 4),
            heldout_accuracy=round(heldout_hits / heldout_terms, 4) if heldout_terms else None,
            instances=trained,
            seconds=round(time.perf_counter() - start, 2),
            fingerprint=self.fingerprint(dataset),
            num_classes=num_classes,
        )

    def _train_fold(self, model_init, fold: int, indices: list[int], dataset, collator):
        args = self.args
        fold_args = replace(
            args,
            output_dir=os.path.join(args.output_dir, "irreducible", f"fold-{fold}"),
            num_train_epochs=self.epochs,
            max_steps=-1,
            seed=self.seed + fold,
            save_strategy="no",
            eval_strategy="no",
            logging_strategy="no",
            load_best_model_at_end=False,
            push_to_hub=False,
            report_to="none",
            remove_unused_columns=False,  # the training set comes with the Boss's columns only
        )
        torch.manual_seed(self.seed + fold)
        fold_trainer = Trainer(
            model=model_init(), args=fold_args, train_dataset=_subset(dataset, indices), data_collator=collator
        )
        fold_trainer.train()
        instances = fold_trainer.state.global_step * fold_args.train_batch_size * fold_args.gradient_accumulation_steps
        instances = min(instances, math.ceil(self.epochs * len(indices)))  # the last batch of each epoch may be short
        return fold_trainer.accelerator.unwrap_model(fold_trainer.model), instances

    @torch.no_grad()
    def _score(self, model, indices: list[int], dataset, collator):
        """Per-instance losses of `indices`, the correct predictions and the terms they were counted over, and the
        number of classes (None for sequences)."""
        args = self.args
        model.eval()
        device = next(model.parameters()).device
        loader = DataLoader(_subset(dataset, indices), batch_size=args.per_device_eval_batch_size, collate_fn=collator)
        causal = self.is_causal_lm(model)
        losses, hits, terms, num_classes = [], 0.0, 0.0, None
        for batch in loader:
            batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
            labels = batch.get("labels")
            outputs = model(**batch)
            logits = outputs.get("logits") if isinstance(outputs, dict) else None
            if logits is None or labels is None:
                raise ValueError(
                    f"`autoassist_label={args.autoassist_label!r}` (or `autoassist_implausible_keep_prob`) "
                    "scores each instance with the irreducible-loss model's `logits` and the batch's `labels`; this "
                    "model or batch has none. Use another `autoassist_label` (and leave "
                    "`autoassist_implausible_keep_prob` unset)."
                )
            sums, counts = per_instance_loss_terms(
                logits, labels, label_smoothing=args.label_smoothing_factor, shift_labels=causal
            )
            losses.append((sums / counts.clamp(min=1)).float().cpu())
            num_classes = logits.shape[-1] if logits.dim() == 2 else None
            predicted, target = logits.argmax(-1), labels
            if causal:
                predicted, target = predicted[:, :-1], target[:, 1:]
            counted = target.ne(-100)
            hits += float((predicted.eq(target) & counted).sum())
            terms += float(counted.sum())
        return torch.cat(losses), hits, terms, num_classes


def irreducible_losses_for_run(
    args, boss, is_causal_lm, model_init, dataset, collator, is_main_process: bool, resume_from: str | None
) -> IrreducibleLosses | None:
    """[`irreducible_losses_for`] a training run whose options read them (`args.needs_irreducible_losses`), with
    models like the Boss (`IrreducibleLossModel`); None for the others."""
    if not args.needs_irreducible_losses:
        return None
    model = IrreducibleLossModel(args, boss, is_causal_lm, model_init)
    return irreducible_losses_for(model, dataset, collator, is_main_process, resume_from)


def load_cached(path: str, fingerprint: str) -> IrreducibleLosses | None:
    """The losses in `path` if it was written for this data and these settings, else None (with a warning)."""
    if not os.path.isfile(path):
        return None
    saved = torch.load(path, weights_only=False)
    if "num_classes" not in saved:
        logger.warning(f"The irreducible losses in {path} were written by an older version: computing them again.")
        return None
    if saved.get("fingerprint") != fingerprint:
        logger.warning(
            f"The irreducible losses in {path} were computed for other data or settings: computing them again "
            "(the file will be overwritten)."
        )
        return None
    return IrreducibleLosses(**{**saved, "source": path})


def save_cached(path: str, result: IrreducibleLosses) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    torch.save({k: v for k, v in asdict(result).items() if k != "source"}, path)


def irreducible_losses_for(
    model: IrreducibleLossModel, dataset, collator, is_main_process: bool, resume_from: str | None = None
) -> IrreducibleLosses:
    """For a training run: from the checkpoint being resumed, else from `autoassist_irreducible_cache`, else trained
    and scored now by `model` (and written to the cache by the main process)."""
    args = model.args
    if resume_from is not None:
        saved = (read_state(resume_from, args.process_index) or {}).get("irreducible")
        if saved is not None and len(saved["losses"]) == len(dataset):
            return IrreducibleLosses(**{**saved, "source": resume_from})
    cache = args.autoassist_irreducible_cache
    if cache is not None:
        cached = load_cached(cache, model.fingerprint(dataset))
        if cached is not None:
            logger.warning(
                f"Irreducible losses read from {cache}, computed by an earlier run in {cached.seconds} s (not counted "
                "in this run's time); delete the file to compute them again."
            )
            return cached
    logger.info(
        f"Training {model.folds} irreducible-loss models for {model.epochs} epoch(s) each, each on 1/{model.folds} "
        f"of the training set, to score the rest (autoassist_label={args.autoassist_label!r}, "
        f"autoassist_implausible_keep_prob={args.autoassist_implausible_keep_prob})."
    )
    result = model.compute(dataset, collator)
    logger.info(f"Irreducible losses: {result.summary()}")
    if cache is not None and is_main_process:
        save_cached(cache, result)
    return result
