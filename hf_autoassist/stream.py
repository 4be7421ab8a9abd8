"""Selection on a streamed training set: instances filtered as they are read, batches filled from the kept ones.

AutoAssist's batch generator was a filter on a stream; a streamed corpus (a `datasets` set loaded with
`streaming=True`, a torch `IterableDataset`) has no index to select by, so each instance is decided when it
arrives: dropped when the pairs check finds its target does not fit its source (`plausibility/stream.py`, learned from
the stream's first pairs), kept with `autoassist_keep_prob` under `"random"`, or with the shrinking rule's chance from
the Assistant's score under `"autoassist"` (its features read from the instance, `StreamedAssistant`). The filter is
the DataLoader's dataset: the Trainer batches what it yields, `max_steps` counts those batches as for any stream, and
accelerate hands them to the processes as it hands a plain stream's (by default the main process reads and
dispatches, so every rank runs the same steps). The check's and `random`'s decisions are functions of the seed, the
epoch, the instance and its place in the stream, so a resumed run that replays the stream's first batches (the
Trainer's own resume) meets the same ones; the Assistant's also depend on what it learned by then.
"""

import itertools
import math
from collections.abc import Iterator

import torch
from accelerate.utils import broadcast_object_list
from torch.utils.data import Dataset, IterableDataset
from transformers.utils import logging

from .assistants import BagOfTokensAssistant, build_assistant, resolve_assistant_name
from .columns import labels_are_sequences
from .plausibility import holds_pairs, pair_columns
from .plausibility.check import AUTO_MAX_FLAGGED
from .plausibility.stream import SCORE_CHUNK, StreamedPairsCheck
from .selection import acceptance_probability
from .strategies import AUTO, AutoAssistSelection
from .strategies.random_skip import keep_probability_for_epoch

logger = logging.get_logger(__name__)

# the strategies a stream can be selected with: `none` (and `auto`, which adds no selection of its own to a stream)
# keep every instance the check leaves; `random` keeps each with its probability; `autoassist` with its Assistant's
# (features read from the instances as they arrive). `adaptive` and `infobatch` read every instance's last loss.
STREAMED_STRATEGIES = ("none", AUTO, "random", "autoassist")
STREAMED_CHECKS = (None, "none", AUTO, "pairs")
# the instances the streamed Assistant is built from (its pixel standardisation, its first table)
ASSISTANT_BUFFER = 1024


class ListDataset(Dataset):
    """A stream's first instances, read as a map-style set (for building an Assistant from them)."""

    def __init__(self, items: list[dict]):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        return self.items[index]


class StreamedAssistant:
    """`autoassist` on a stream: the `pixels` or `bag_of_tokens` Assistant, built from the stream's first instances
    and then rebound (`rebind`) to each group of instances it scores as they arrive, or learns from in the training
    step (read from the batch itself). No loss memory (a stream has no stable id), and it learns inside the step (a
    rebound table must not change under a thread)."""

    def __init__(self, args, first: list[dict], vocab_size: int | None = None):
        strategy = AutoAssistSelection.from_args(args)  # as asked, to name what a stream cannot run
        name = resolve_assistant_name(strategy.assistant_name, ListDataset(first))
        if name not in ("pixels", "bag_of_tokens") or strategy.label_rule.reads_memory:
            asked = (f"autoassist_label={strategy.label_rule.name!r}" if strategy.label_rule.reads_memory
                     else f"autoassist_assistant={name!r}")  # fmt: skip
            raise ValueError(
                f"On a stream the Assistant reads each instance's pixels or token ids as it arrives, and no instance "
                f"has a memory of its past losses: `{asked}` cannot run there. Use `autoassist_assistant='pixels'` or "
                "'bag_of_tokens' (or 'auto') with `autoassist_label='batch_median'` or 'running_mean'."
            )
        budget = {"autoassist_target_keep": strategy.target_keep, "autoassist_reweight": strategy.reweights or None,
                  "autoassist_implausible_keep_prob": strategy.implausible_keep_prob}  # fmt: skip
        asked = [name for name, value in budget.items() if value is not None]
        if asked:
            raise ValueError(
                f"On a stream each instance is decided alone as it arrives, so {asked} (which read a whole epoch's "
                "probabilities or each instance's irreducible loss) cannot run there: unset them."
            )
        self.reads_tokens = name == "bag_of_tokens"
        if self.reads_tokens:
            sources, targets = self._token_rows(first)
            vocab = max([vocab_size or 0, *(max(row, default=0) + 1 for row in sources + (targets or []))])
            assistant = BagOfTokensAssistant(sources, targets, vocab_size=vocab, dim=strategy.token_dim)
        else:
            assistant = build_assistant("pixels", ListDataset(first), pool_size=strategy.pool_size)
        # as a stream runs it: no loss memory, learned inside the step
        strategy = AutoAssistSelection.from_args(args, memory=False, synchronous=True)
        strategy.prepare(ListDataset(first), assistant=assistant)
        self.strategy = strategy

    @staticmethod
    def _token_rows(items: list[dict]) -> tuple[list, list | None]:
        sources = [[int(t) for t in item["input_ids"]] for item in items]
        sequences = "labels" in items[0] and labels_are_sequences(items)
        return sources, [[int(t) for t in item["labels"]] for item in items] if sequences else None

    def _rebind(self, items: list[dict]) -> None:
        assistant = self.strategy.assistant
        if self.reads_tokens:
            assistant.rebind(*self._token_rows(items))
        else:
            labels = torch.tensor([int(item["labels"]) for item in items]) if "labels" in items[0] else None
            assistant.rebind(torch.stack([torch.as_tensor(item["pixel_values"]) for item in items]), labels)

    def keep_probabilities(self, items: list[dict]) -> torch.Tensor:
        """`(B,)` the shrinking rule's chance to keep each instance, from the Assistant's score of it now."""
        self._rebind(items)
        worker = self.strategy.worker
        scores = worker.score(torch.arange(len(items)))
        return acceptance_probability(scores, worker.confidence, self.strategy.base_prob)

    def observe(self, batch: dict, losses: torch.Tensor) -> None:
        """One training step's per-instance losses, with the batch they came from (its features are read there)."""
        if self.reads_tokens:
            mask = batch.get("attention_mask")
            items = []
            for row, input_ids in enumerate(batch["input_ids"].tolist()):
                kept = input_ids if mask is None else [t for t, m in zip(input_ids, mask[row].tolist()) if m]
                items.append({"input_ids": kept, "labels": [t for t in batch["labels"][row].tolist() if t >= 0]}
                             if batch["labels"].dim() > 1 else {"input_ids": kept})  # fmt: skip
            self._rebind(items)
        else:
            labels = batch.get("labels")
            labels = None if labels is None else labels.cpu()
            self.strategy.assistant.rebind(batch["pixel_values"].detach().cpu(), labels)
        self.strategy.worker.submit(torch.arange(len(losses)), losses)

    def state_dict(self) -> dict:
        """The worker's: the Assistant's weights and its running statistics."""
        return self.strategy.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.strategy.load_state_dict(state)

    def metrics(self) -> dict[str, float]:
        return self.strategy.metrics()


class SelectedStream(IterableDataset):
    """The instances of `stream` the run trains on, in the stream's order.

    Args:
        stream: the user's streamed training set (anything iterable; `set_epoch` is passed on when it has one).
        check (`StreamedPairsCheck`, *optional*): drops the pairs it flags.
        keep_prob (`list[float]`, *optional*): `"random"`'s chance to keep each instance, per epoch after the
            warmup (the last value repeating); None keeps every instance the check leaves.
        assistant (`StreamedAssistant`, *optional*): `"autoassist"`'s Assistant, whose rule gives each chance instead.
        warmup_epochs (`float`), warmup_instances (`int`): selection starts once either is read (`selects`).
        seed (`int`): the random draws' seed, with the epoch.
    """

    def __init__(self, stream, check: StreamedPairsCheck | None = None, keep_prob: list[float] | None = None,
                 assistant: StreamedAssistant | None = None, warmup_epochs: float = 1.0,
                 warmup_instances: int | None = None, seed: int = 0):  # fmt: skip
        self.stream, self.check, self.keep_prob, self.assistant = stream, check, keep_prob, assistant
        self.warmup_epochs, self.warmup_instances, self.seed = warmup_epochs, warmup_instances, seed
        self.epoch = 0
        # read by this process since the run started: instances, those the check dropped, those kept
        self.counts = {"read": 0, "flagged": 0, "kept": 0}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.stream, "set_epoch"):
            self.stream.set_epoch(epoch)

    def selects(self, position: int) -> bool:
        """Whether the instance at `position` of this epoch's stream may be skipped: after `warmup_epochs` passes, or
        past the first `warmup_instances` of a pass (a stream read once would otherwise never select)."""
        after_instances = self.warmup_instances is not None and position >= self.warmup_instances
        return self.epoch >= self.warmup_epochs or after_instances

    def keep_probability(self) -> float:
        """This epoch's chance (`random`) to keep an instance the check leaves, once it selects."""
        if self.keep_prob is None:
            return 1.0
        return keep_probability_for_epoch(self.keep_prob, max(0, self.epoch - math.ceil(self.warmup_epochs)))

    def __iter__(self) -> Iterator[dict]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        items, position = iter(self.stream), 0
        while chunk := list(itertools.islice(items, SCORE_CHUNK)):
            keep = torch.ones(len(chunk), dtype=torch.bool)
            if self.check is not None:
                flagged = self.check.flags([item["input_ids"] for item in chunk], [item["labels"] for item in chunk])
                keep &= ~flagged
                self.counts["flagged"] += int(flagged.sum())
            selects = torch.tensor([self.selects(position + i) for i in range(len(chunk))])
            position += len(chunk)
            keep_prob = torch.full((len(chunk),), self.keep_probability())
            if self.assistant is not None and selects.any():
                keep_prob = self.assistant.keep_probabilities(chunk)
            # one draw per instance read, kept or not: with `random`, a draw depends on the place in the stream only
            keep &= (torch.rand(len(chunk), generator=generator) < keep_prob) | ~selects
            self.counts["read"] += len(chunk)
            self.counts["kept"] += int(keep.sum())
            yield from (item for item, kept in zip(chunk, keep.tolist()) if kept)

    def metrics(self) -> dict[str, float]:
        read = max(self.counts["read"], 1)
        metrics = {"autoassist/kept_fraction": round(self.counts["kept"] / read, 4)}
        if self.assistant is not None:
            metrics.update(self.assistant.metrics())
        if self.check is not None:
            metrics["autoassist/flagged_fraction"] = round(self.counts["flagged"] / read, 4)
        return metrics

    def state_dict(self) -> dict:
        """What a checkpoint keeps: the check (not fitted again on resume) and the Assistant; the draws replay from
        the seed."""
        return {
            "stream_check": None if self.check is None else self.check.state_dict(),
            "stream_assistant": None if self.assistant is None else self.assistant.state_dict(),
        }


class StreamHead:
    """A stream's first instances in its epoch 0 order, read once for all that look at them (whether "auto" checks
    its pairs, the check's buffer, the Assistant's first instances): reading a stream from its start again reads, and
    tokenizes, them again."""

    def __init__(self, stream):
        self.stream, self.items, self.iterator = stream, [], None

    def first(self, count: int) -> list[dict]:
        if len(self.items) < count:
            if self.iterator is None:
                if hasattr(self.stream, "set_epoch"):
                    self.stream.set_epoch(0)
                self.iterator = iter(self.stream)
            self.items += itertools.islice(self.iterator, count - len(self.items))
        return self.items[:count]


def first_pairs(stream, count: int) -> tuple[list, list]:
    """The token ids of the stream's first `count` pairs (its epoch 0 order), else an error naming its columns."""
    head = stream if isinstance(stream, StreamHead) else StreamHead(stream)
    return pair_columns(ListDataset(head.first(count)))


def resolve_stream_check(method: str | None, is_encoder_decoder: bool, head: StreamHead) -> str | None:
    """`"pairs"` when asked for, or by `"auto"` on an encoder-decoder whose stream holds token-id pairs."""
    if method in (None, "none"):
        return None
    if method != AUTO:
        return method
    return "pairs" if is_encoder_decoder and holds_pairs(ListDataset(head.first(1))) else None


def fit_stream_check(args, head: StreamHead, accelerator, seed: int, automatic: bool) -> StreamedPairsCheck:
    """Fitted on the main process from the stream's first `autoassist_stream_buffer` pairs, and sent to every rank
    (each then flags the same pairs)."""
    payload = [None]
    if accelerator.is_main_process:
        sources, targets = first_pairs(head, args.autoassist_stream_buffer)
        check = StreamedPairsCheck.fit(
            sources, targets, args.autoassist_plausibility_threshold, args.autoassist_plausibility_folds,
            args.autoassist_plausibility_passes, seed, args.autoassist_plausibility_rounds,
        )  # fmt: skip
        share = float(check.buffer.flagged.float().mean())
        if automatic and share > AUTO_MAX_FLAGGED:
            check.active = False
            logger.warning(
                f"Plausibility (auto): the pairs check found {share:.0%} of the stream's first {len(sources)} pairs "
                "implausible, more than a default acts on: nothing is dropped. If most pairs really are misaligned, "
                "set `autoassist_plausibility='pairs'` to drop them."
            )
        else:
            logger.warning(
                f"Plausibility (pairs, streamed): {int(check.buffer.flagged.sum())} of the stream's first "
                f"{len(sources)} pairs flagged ({share:.1%}; the mixture's implausible share {check.share:.1%}; "
                f"{check.buffer.seconds:.0f} s); each later pair is checked as it is read, and dropped when flagged."
            )
        payload = [check.state_dict()]
    if accelerator.num_processes > 1:
        broadcast_object_list(payload, from_process=0)
    return StreamedPairsCheck.from_state_dict(payload[0])


def streamed_assistant(args, head: StreamHead, accelerator, vocab_size: int | None) -> StreamedAssistant:
    """`autoassist`'s Assistant on a stream, built from its first `ASSISTANT_BUFFER` instances. Only the main process
    filters (accelerate dispatches a stream's batches from it by default); with each rank reading the stream itself,
    each rank's Assistant would learn from its own losses and keep other instances."""
    if accelerator.num_processes > 1 and getattr(accelerator, "dispatch_batches", None) is False:
        raise ValueError(
            "`autoassist_strategy='autoassist'` on a stream decides on the process that reads it: leave accelerate's "
            "`dispatch_batches` at its default for a stream (True), or use 'random' or the pairs check, which decide "
            "alike on every rank."
        )
    first = head.first(ASSISTANT_BUFFER)
    if not first:
        raise ValueError("The streamed training set yielded no instance.")
    return StreamedAssistant(args, first, vocab_size)


def selected_stream(args, stream, accelerator, model_config=None, saved: dict | None = None):
    """The `SelectedStream` a run trains on, or None when it selects nothing (the plain Trainer's loader).
    `model_config`: the Boss's (an encoder-decoder's stream is checked by "auto"; a token Assistant covers its
    vocabulary). A resumed run passes its checkpoint's state (`saved`): the same check, not fitted again, and the
    Assistant as it was."""
    is_encoder_decoder = bool(getattr(model_config, "is_encoder_decoder", False))
    vocab_size = getattr(model_config, "vocab_size", None)
    strategy, requested_check = args.autoassist_strategy, args.autoassist_plausibility
    head = StreamHead(stream)
    method = resolve_stream_check(requested_check, is_encoder_decoder, head) if strategy != "none" or (
        requested_check not in (None, "none", AUTO)) else None  # fmt: skip
    keep_prob = args.autoassist_keep_prob if strategy == "random" else None
    if method is None and keep_prob is None and strategy != "autoassist":
        if strategy == AUTO:
            logger.warning(
                f"The training set is streamed ({type(stream).__name__}) and holds no seq2seq pairs for the pairs "
                "check of an encoder-decoder: this run trains on every instance, as the plain `Trainer` does. Load it "
                "without `streaming=True` (or materialise it with `datasets.Dataset.from_generator`) to select from it."
            )
        return None
    seed = args.data_seed if args.data_seed is not None else args.seed
    saved = saved or {}
    check = assistant = None
    if method == "pairs":
        if saved.get("stream_check") is not None:
            check = StreamedPairsCheck.from_state_dict(saved["stream_check"])
        else:
            check = fit_stream_check(args, head, accelerator, seed, automatic=requested_check == AUTO)
    if strategy == "autoassist":
        assistant = streamed_assistant(args, head, accelerator, vocab_size)
        if saved.get("stream_assistant") is not None:
            assistant.load_state_dict(saved["stream_assistant"])
    return SelectedStream(
        stream, check, keep_prob, assistant, args.autoassist_warmup_epochs, args.autoassist_stream_buffer, seed
    )
