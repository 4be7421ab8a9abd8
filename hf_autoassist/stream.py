"""Selection on a streamed training set: instances filtered as they are read, batches filled from the kept ones.

AutoAssist's batch generator was a filter on a stream; a streamed corpus (a `datasets` set loaded with
`streaming=True`, a torch `IterableDataset`) has no index to select by, so each instance is decided when it
arrives: dropped when the pairs check finds its target does not fit its source (`plausibility/stream.py`, learned from
the stream's first pairs), kept with `autoassist_keep_prob` under `"random"`. The filter is the DataLoader's dataset:
the Trainer batches what it yields, `max_steps` counts those batches as for any stream, and accelerate hands them to
the processes as it hands a plain stream's (by default the main process reads and dispatches, so every rank runs the
same steps). Every decision is a function of the seed, the epoch and the instance's place in the stream, so a
resumed run that replays the stream's first batches (the Trainer's own resume) meets the same ones.
"""

import itertools
import math
from collections.abc import Iterator

import torch
from accelerate.utils import broadcast_object_list
from torch.utils.data import IterableDataset
from transformers.utils import logging

from .columns import labels_are_sequences
from .plausibility.check import AUTO_MAX_FLAGGED
from .plausibility.stream import SCORE_CHUNK, StreamedPairsCheck
from .strategies import AUTO
from .strategies.random_skip import keep_probability_for_epoch

logger = logging.get_logger(__name__)

# the strategies a stream can be selected with: `none` (and `auto`, which adds no selection of its own to a stream)
# keep every instance the check leaves; `random` keeps each with its probability. The others read every instance's
# last loss or an Assistant's features by index.
STREAMED_STRATEGIES = ("none", AUTO, "random")
STREAMED_CHECKS = (None, "none", AUTO, "pairs")


class SelectedStream(IterableDataset):
    """The instances of `stream` the run trains on, in the stream's order.

    Args:
        stream: the user's streamed training set (anything iterable; `set_epoch` is passed on when it has one).
        check (`StreamedPairsCheck`, *optional*): drops the pairs it flags.
        keep_prob (`list[float]`, *optional*): `"random"`'s chance to keep each instance, per epoch after the
            `warmup_epochs` (the last value repeating); None keeps every instance the check leaves.
        seed (`int`): the random draws' seed, with the epoch.
    """

    def __init__(self, stream, check: StreamedPairsCheck | None = None, keep_prob: list[float] | None = None,
                 warmup_epochs: float = 1.0, seed: int = 0):  # fmt: skip
        self.stream, self.check, self.keep_prob = stream, check, keep_prob
        self.warmup_epochs, self.seed = warmup_epochs, seed
        self.epoch = 0
        # read by this process since the run started: instances, those the check dropped, those kept
        self.counts = {"read": 0, "flagged": 0, "kept": 0}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.stream, "set_epoch"):
            self.stream.set_epoch(epoch)

    def keep_probability(self) -> float:
        """This epoch's chance to keep an instance the check leaves."""
        if self.keep_prob is None or self.epoch < self.warmup_epochs:
            return 1.0
        return keep_probability_for_epoch(self.keep_prob, self.epoch - math.ceil(self.warmup_epochs))

    def __iter__(self) -> Iterator[dict]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        keep_prob = self.keep_probability()
        items = iter(self.stream)
        while chunk := list(itertools.islice(items, SCORE_CHUNK)):
            keep = torch.ones(len(chunk), dtype=torch.bool)
            if self.check is not None:
                flagged = self.check.flags([item["input_ids"] for item in chunk], [item["labels"] for item in chunk])
                keep &= ~flagged
                self.counts["flagged"] += int(flagged.sum())
            # one draw per instance read, kept or not: an instance's draw depends on its place in the stream only
            keep &= torch.rand(len(chunk), generator=generator) < keep_prob
            self.counts["read"] += len(chunk)
            self.counts["kept"] += int(keep.sum())
            yield from (item for item, kept in zip(chunk, keep.tolist()) if kept)

    def metrics(self) -> dict[str, float]:
        read = max(self.counts["read"], 1)
        metrics = {"autoassist/kept_fraction": round(self.counts["kept"] / read, 4)}
        if self.check is not None:
            metrics["autoassist/flagged_fraction"] = round(self.counts["flagged"] / read, 4)
        return metrics


def first_pairs(stream, count: int) -> tuple[list, list]:
    """The token ids of the stream's first `count` pairs (its epoch 0 order)."""
    if hasattr(stream, "set_epoch"):
        stream.set_epoch(0)
    buffer = list(itertools.islice(iter(stream), count))
    if not buffer or "input_ids" not in buffer[0] or "labels" not in buffer[0] or not labels_are_sequences(buffer):
        names = sorted(buffer[0]) if buffer else "no instance"
        raise ValueError(
            "`autoassist_plausibility='pairs'` on a stream reads each pair's source and target token ids (`input_ids` "
            f"and token-sequence `labels`) from its first pairs; they hold {names}. Tokenize the stream with "
            "`.map(...)` (with `text_target=`) before the trainer."
        )
    return [item["input_ids"] for item in buffer], [item["labels"] for item in buffer]


def resolve_stream_check(method: str | None, is_encoder_decoder: bool, stream) -> str | None:
    """`"pairs"` when asked for, or by `"auto"` on an encoder-decoder whose stream holds token-id pairs."""
    if method in (None, "none"):
        return None
    if method != AUTO:
        return method
    if not is_encoder_decoder:
        return None
    first = next(iter(stream), None)
    if first is None or "input_ids" not in first or "labels" not in first or not labels_are_sequences([first]):
        return None
    return "pairs"


def fit_stream_check(args, stream, accelerator, seed: int, automatic: bool) -> StreamedPairsCheck:
    """Fitted on the main process from the stream's first `autoassist_stream_buffer` pairs, and sent to every rank
    (each then flags the same pairs)."""
    payload = [None]
    if accelerator.is_main_process:
        sources, targets = first_pairs(stream, args.autoassist_stream_buffer)
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


def selected_stream(args, stream, accelerator, is_encoder_decoder: bool, saved_check: dict | None = None):
    """The `SelectedStream` a run trains on, or None when it selects nothing (the plain Trainer's loader). A
    resumed run passes its checkpoint's check (`saved_check`) instead of fitting it again."""
    strategy, requested_check = args.autoassist_strategy, args.autoassist_plausibility
    method = resolve_stream_check(requested_check, is_encoder_decoder, stream) if strategy != "none" or (
        requested_check not in (None, "none", AUTO)) else None  # fmt: skip
    keep_prob = args.autoassist_keep_prob if strategy == "random" else None
    if method is None and keep_prob is None:
        if strategy == AUTO:
            logger.warning(
                f"The training set is streamed ({type(stream).__name__}) and holds no seq2seq pairs for the pairs check "
                "of an encoder-decoder: this run trains on every instance, as the plain `Trainer` does. Load it "
                "without `streaming=True` (or materialise it with `datasets.Dataset.from_generator`) to select from it."
            )
        return None
    seed = args.data_seed if args.data_seed is not None else args.seed
    check = None
    if method == "pairs":
        if saved_check is not None:
            check = StreamedPairsCheck.from_state_dict(saved_check)
        else:
            check = fit_stream_check(args, stream, accelerator, seed, automatic=requested_check == AUTO)
    return SelectedStream(stream, check, keep_prob, args.autoassist_warmup_epochs, seed)
