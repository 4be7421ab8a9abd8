"""`adaptive`: keep each instance in proportion to what it has left to learn, on the loss memory, without fewer steps.

An instance's last loss `l` (from the training step, for free) says how much probability the Boss still puts off
its target: `1 - exp(-l)` (for a class label exactly `1 - p(y | x)`, which bounds the norm of its gradient at the
logits). An instance is kept with `p = clamp((1 - exp(-l)) / learned_margin, floor, 1)` and its loss scaled by
`1 / p`, so the expected gradient is the full batch's: instances the Boss still gets wrong are always kept, and only
those it already fits within the margin are skipped, in proportion. The kept share therefore follows learning: an
epoch stays (nearly) whole while most instances are still being learned, and thins as they are learned.

Where the targets are tokens, `token_reading="argmax"` reads what is left to learn as the share of an instance's
target tokens whose argmax is wrong instead: label smoothing and dropout keep a fitted sequence's token loss above
the margin (on the suite's translation recipe no pair came within it at any length), and its argmax less.

The floor follows the recipe's length ([`visits_floor`]): `learned_visits / planned epochs` (8 by default, never below
`base_prob`), so that a learned instance is still visited about as often on any recipe. The training losses cannot
tell a short recipe from a long one (on Fashion-MNIST they are learned in two or three epochs at every length);
the schedule can. A recipe of 8 epochs or fewer keeps everything; a 10-epoch one keeps about 0.9 of its instances,
a 40-epoch one about half, and about a third with the unlearned visits below (`docs/benchmarks.md`, candidates for
the default).

An instance kept whole in `unlearned_visits` decided epochs (8 from the options) and still not learned, once most
of the set is, is kept at the floor from then on, as a learned one: what the Boss has not learned in 8 visits when
most instances took two or three it learns only by memorising, if at all (a hard, ambiguous or wrong label). Its
loss is still scaled by `1 / p`, so the expected gradient stays the full batch's. Where most of the set is still
being learned (an undertrained recipe; every pair under label smoothing, whose loss never comes within the margin)
no instance is an outlier and nothing is floored.

The epoch keeps the plain run's batches and optimizer steps, each batch thinned to its kept instances
(`AssistedBatchSampler(keep_steps=True)`): the LR schedule and the number of updates are the plain run's, only the
instances each update forwards are fewer. Skipping whole batches instead makes a shorter schedule, which costs on
a recipe that is still learning (benchmarks/README.md, the half-length rows; fewer steps with this floor ended below
the plain run on the converged ResNet on every screened seed).
"""

import functools

import torch

from ..loss_memory import latest_across_ranks
from ..selection import check_base_prob, inverse_probability_weights, sample_keep_mask
from .base import LossMemorySelection, Selection


def left_to_learn(losses: torch.Tensor) -> torch.Tensor:
    """`1 - exp(-loss)`, in [0, 1): the probability the Boss puts off each instance's target (NaN stays NaN).

    Example:
        >>> left_to_learn(torch.tensor([0.0, 0.1054, 2.3026])).round(decimals=2)
        tensor([0.0000, 0.1000, 0.9000])
    """
    return -torch.expm1(-losses.clamp_min(0.0))


def adaptive_keep_probability(losses: torch.Tensor, seen: torch.Tensor, learned_margin: float, base_prob: float):
    """Each candidate's chance to be kept: `clamp(left_to_learn / learned_margin, base_prob, 1)`, 1 where not seen.

    Example:
        >>> adaptive_keep_probability(torch.tensor([2.0, 0.05, 0.001, 0.0]), torch.tensor([True, True, True, False]),
        ...                           learned_margin=0.1, base_prob=0.3).round(decimals=2)
        tensor([1.0000, 0.4900, 0.3000, 1.0000])
    """
    return keep_probability(left_to_learn(losses), seen, learned_margin, base_prob)


def has_reading(left: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
    """The candidates with a reading of what they have left to learn: seen, and not NaN (token misses not yet read).
    Only these are judged; the others keep chance 1 for want of one."""
    return seen & ~torch.isnan(left)


def keep_probability(left: torch.Tensor, seen: torch.Tensor, learned_margin: float, base_prob: float):
    """Each candidate's chance from what it has left to learn, in [0, 1]: `clamp(left / learned_margin, base_prob,
    1)`, 1 where not seen (or NaN)."""
    probs = (left / learned_margin).clamp(base_prob, 1.0)
    return torch.where(has_reading(left, seen), probs, torch.ones_like(probs))


def learned_fraction(left: torch.Tensor, seen: torch.Tensor, learned_margin: float) -> float:
    """The share of the seen candidates the Boss fits within the margin (`left < learned_margin`); 0 if none is seen.

    Example:
        >>> learned_fraction(torch.tensor([0.01, 0.5, 0.02, 0.0]), torch.tensor([True, True, True, False]), 0.1)
        0.6666666865348816
    """
    judged = has_reading(left, seen)
    return float((left[judged] < learned_margin).float().mean()) if judged.any() else 0.0


def retained_keep_probability(retained: torch.Tensor, retained_visits: int, base_prob: float) -> torch.Tensor:
    """Each candidate's chance to be kept from its run of visits within the margin (`retained`): 1 until the run
    reaches `retained_visits`, then halved with each further visit that stays learned, never below `base_prob`. An
    instance learned once may be forgotten at its next visit (Toneva et al., ICLR 2019); one learned and kept over
    several visits is reviewed at doubling intervals, as a Leitner queue does (Amiri et al., EMNLP 2017).

    Example:
        >>> retained_keep_probability(torch.tensor([0, 1, 2, 3, 4, 9]), retained_visits=2, base_prob=0.1)
        tensor([1.0000, 1.0000, 0.5000, 0.2500, 0.1250, 0.1000])
    """
    halvings = (retained - retained_visits + 1).clamp_min(0).float()
    return torch.exp2(-halvings).clamp_min(base_prob)


def planned_epochs(args, num_samples: int) -> float:
    """Passes over `num_samples` instances the Trainer's schedule makes: `num_train_epochs`, or with `max_steps` its
    instances (per device batch x accumulation x processes per step) over the set's."""
    if args.max_steps > 0:
        per_step = args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
        return args.max_steps * per_step / max(num_samples, 1)
    return float(args.num_train_epochs)


def visits_floor(learned_visits: float, epochs: float, base_prob: float) -> float:
    """The floor on a learned instance's chance that still visits it about `learned_visits` times over a run of
    `epochs` passes: `learned_visits / epochs`, within [`base_prob`, 1]. A short recipe has no visits to spare and
    keeps (nearly) everything; a long one revisits what is learned only as often as a recipe of `learned_visits`
    epochs would.

    Example:
        >>> [visits_floor(8, epochs, base_prob=0.1) for epochs in (4, 10, 20, 40, 160)]
        [1.0, 0.8, 0.4, 0.2, 0.1]
    """
    return min(1.0, max(base_prob, learned_visits / epochs))


class AdaptiveSelection(LossMemorySelection):
    """Keeps each candidate with [`adaptive_keep_probability`] and weights it by `1 / p`; thins batches in place.

    Args:
        learned_margin (`float`, defaults to `0.1`): in (0, 1], `autoassist_learned_margin`: an instance whose
            probability off its target is below this is skipped in proportion (at half of it, half of the time).
        base_prob (`float`, defaults to `0.1`): in (0, 1], `autoassist_base_prob`: the lowest floor on any
            instance's chance (so on the loss weights, at most `1 / base_prob`), which also revisits learned instances
            often enough to see them forgotten.
        smoothing_floor (`bool`, defaults to `False`): `autoassist_smoothing_floor`: read what is left to learn from
            the loss above the one label smoothing leaves on a fitted instance (at `label_smoothing_factor=0.1` over
            2,000 tokens, 1.08 nats: `left_to_learn` 0.66, so without it no smoothed instance ever counts learned).
        retained_visits (`int`, defaults to `0`): `autoassist_retained_visits`: when positive, an instance is skipped
            only once its loss stayed within the margin on this many visits in a row, and then at doubling
            intervals ([`retained_keep_probability`]); 0 keeps each instance in proportion to its last loss.
        reweight (`bool`, defaults to `True`): `autoassist_adaptive_reweight`: weight each kept instance by `1 / p`.
        learned_visits (`float`, defaults to `0`): `autoassist_learned_visits` (8 from the options): when positive,
            the floor is [`visits_floor`] of the run's planned epochs (`planned_epochs`, a function of the set's
            size); 0 floors every chance at `base_prob` alone.
        token_reading (`str`, defaults to `"loss"`): `autoassist_token_reading`: where the targets are tokens, read
            what is left to learn from the share of missed target tokens (`"argmax"`) or from the loss (`"loss"`).
        unlearned_visits (`int`, defaults to `0`): `autoassist_unlearned_visits` (8 from the options): when positive
            and without `retained_visits`, an instance whose chance was 1 (not learned) in this many decided epochs
            is kept at the floor from then on, as a learned one: what the Boss has not learned in that many visits
            it learns only by memorising, if at all. Only from the first decision at which most of the set is
            learned ([`learned_fraction`] at least a half): where the Boss is still learning most instances (every
            pair under label smoothing, an undertrained recipe) none is an outlier. Once open the gate stays open, so
            that a learned share near a half cannot floor and unfloor the same instances from epoch to epoch.
    """

    name = "adaptive"
    reweights = True
    keeps_steps = True
    # below the paper's 0.3: the floor in force is `learned_visits / planned epochs`, which a long recipe brings down
    default_base_prob = 0.1

    def __init__(
        self, learned_margin: float = 0.1, base_prob: float = 0.1, smoothing_floor: bool = False,
        retained_visits: int = 0, reweight: bool = True, learned_visits: float = 0.0, planned_epochs=None,
        token_reading: str = "loss", unlearned_visits: int = 0,
    ):  # fmt: skip
        if not 0.0 < learned_margin <= 1.0:
            raise ValueError(
                f"`autoassist_learned_margin` must be in (0, 1], got {learned_margin}: the probability off its target "
                "below which an instance counts as learned. Smaller values skip less."
            )
        check_base_prob(base_prob)
        if retained_visits < 0:
            raise ValueError(
                f"`autoassist_retained_visits` must be 0 or more, got {retained_visits}: the visits in a row within "
                "the margin before an instance is skipped (0: skip in proportion to the last loss)."
            )
        if not learned_visits >= 0:
            raise ValueError(
                f"`autoassist_learned_visits` must be 0 or more, got {learned_visits}: the visits a learned instance "
                "keeps over the run. Use 0 to floor every chance at autoassist_base_prob, whatever the recipe's length."
            )
        if unlearned_visits < 0:
            raise ValueError(
                f"`autoassist_unlearned_visits` must be 0 or more, got {unlearned_visits}: the epochs an instance is "
                "kept whole before, still not learned, it is kept at the floor (0: never)."
            )
        if token_reading not in ("argmax", "loss"):
            raise ValueError(
                f"`autoassist_token_reading` must be 'argmax' or 'loss', got {token_reading!r}: how 'adaptive' reads "
                "what an instance whose targets are tokens has left to learn."
            )
        self.learned_margin, self.base_prob, self.retained_visits = learned_margin, base_prob, retained_visits
        self.reads_token_misses = token_reading == "argmax"
        self.unlearned_visits = unlearned_visits
        self.learned_visits, self.planned_epochs = learned_visits, planned_epochs
        self.floor = base_prob
        self.reads_loss_above_floor, self.reweights = smoothing_floor, reweight
        self.last_mean_prob = 1.0
        self.last_learned_fraction = None  # read from the last decision (without retained visits)
        self.unlearned_gate_open = False  # since a decision at which most of the set was learned

    @classmethod
    def from_args(cls, args):
        return cls(
            learned_margin=args.autoassist_learned_margin, base_prob=cls.base_prob_from(args),
            smoothing_floor=args.autoassist_smoothing_floor, retained_visits=args.autoassist_retained_visits,
            reweight=args.autoassist_adaptive_reweight, learned_visits=args.autoassist_learned_visits,
            planned_epochs=functools.partial(planned_epochs, args), token_reading=args.autoassist_token_reading,
            unlearned_visits=args.autoassist_unlearned_visits,
        )  # fmt: skip

    def prepare(self, dataset, assistant=None, irreducible=None, device=None):
        super().prepare(dataset, assistant, irreducible, device)
        if self.learned_visits > 0:
            if self.planned_epochs is None:
                raise ValueError("`learned_visits` needs `planned_epochs`: the run's passes over a set of that size.")
            self.floor = visits_floor(self.learned_visits, self.planned_epochs(len(dataset)), self.base_prob)
        # visits in a row within the margin, kept only when they decide (a long per instance, in every checkpoint)
        self.retained = torch.zeros(len(dataset), dtype=torch.long) if self.retained_visits else None
        # each instance's last share of missed target tokens: made when the first one comes (only token targets have
        # them), NaN until its instance is read, and then what `select` reads instead of the loss
        self.missed = None
        # decided epochs in which each instance's chance was 1, counted where they decide (the main process)
        counts_unlearned = self.unlearned_visits and not self.retained_visits  # retained visits decide on their own
        self.unlearned_epochs = torch.zeros(len(dataset), dtype=torch.long) if counts_unlearned else None
        self.unlearned_gate_open = False

    def synchronize(self, accelerator):
        if accelerator.num_processes > 1:  # by the visits' clocks, before they merge
            if self.retained is not None:
                self.retained, _ = latest_across_ranks(accelerator, self.retained, self.memory.step)
            if self.missed is not None:  # every rank reads the same kind of targets: all have made it
                self.missed, _ = latest_across_ranks(accelerator, self.missed, self.memory.step)
        super().synchronize(accelerator)

    def observe_token_misses(self, indices, misses, step):
        if self.missed is None:
            self.missed = torch.full_like(self.memory.loss, float("nan"))  # one per instance, as the memory
        self.missed[indices.detach().long().cpu()] = misses.detach().float().cpu()

    def left(self, indices: torch.Tensor) -> torch.Tensor:
        """What each of `indices` has left to learn, in [0, 1] (NaN until read): its share of missed target tokens
        where those are read, else `left_to_learn` of its last loss."""
        return left_to_learn(self.memory.loss[indices]) if self.missed is None else self.missed[indices]

    def observe(self, indices, losses, step, features=None):
        super().observe(indices, losses, step, features)
        if self.retained is not None:
            indices = indices.detach().long().cpu()
            learned = self.left(indices) < self.learned_margin
            self.retained[indices] = torch.where(learned, self.retained[indices] + 1, 0)

    def select(self, candidates, selecting_epoch, generator):
        if self.retained is not None:
            probs = retained_keep_probability(self.retained[candidates], self.retained_visits, self.floor)
        else:
            seen, left = self.memory.seen[candidates], self.left(candidates)
            probs = keep_probability(left, seen, self.learned_margin, self.floor)
            self.last_learned_fraction = learned_fraction(left, seen, self.learned_margin)
            if self.unlearned_epochs is not None:
                whole = (probs >= 1.0) & has_reading(left, seen)  # a chance of 1 from a reading, not for want of one
                self.unlearned_epochs[candidates[whole]] += 1
                # an outlier only where most of the set is learned: from then on, not only at the epochs that say so
                self.unlearned_gate_open |= self.last_learned_fraction >= 0.5
                if self.unlearned_gate_open:
                    stale = self.unlearned_epochs[candidates] > self.unlearned_visits
                    probs = torch.where(stale, self.floor, probs)
        self.last_mean_prob = float(probs.mean()) if len(probs) else 1.0
        weights = inverse_probability_weights(probs) if self.reweights else None
        return Selection(sample_keep_mask(probs, generator), weights)

    def metrics(self):
        metrics = {"autoassist/mean_keep_prob": round(self.last_mean_prob, 4)}
        if self.last_learned_fraction is not None:
            # "_fraction", not "_share": names ending in "_share" are timings, kept out of the log history
            metrics["autoassist/learned_fraction"] = round(self.last_learned_fraction, 4)
        return metrics

    def state_dict(self):
        state = {**super().state_dict(), "last_mean_prob": self.last_mean_prob,
                 "last_learned_fraction": self.last_learned_fraction,
                 "unlearned_gate_open": self.unlearned_gate_open}  # fmt: skip
        if self.missed is not None:
            state["missed"] = self.missed.clone()
        if self.unlearned_epochs is not None:
            state["unlearned_epochs"] = self.unlearned_epochs.clone()
        return state if self.retained is None else {**state, "retained": self.retained.clone()}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.last_mean_prob = state.get("last_mean_prob", 1.0)
        self.last_learned_fraction = state.get("last_learned_fraction")
        # saved before the gate was kept open (2026-12-07): open if it was at the last decision
        self.unlearned_gate_open = state.get("unlearned_gate_open", (self.last_learned_fraction or 0.0) >= 0.5)
        # a checkpoint saved before its first token targets were read, or by a run that read their loss, has none:
        # the next training step makes them again
        self.missed = state["missed"].clone() if "missed" in state and self.reads_token_misses else None
        if self.unlearned_epochs is not None and "unlearned_epochs" in state:
            self.unlearned_epochs = state["unlearned_epochs"].clone()
        if self.retained is not None:
            if "retained" not in state:
                raise ValueError(
                    "This checkpoint was saved without `autoassist_retained_visits`, so it holds no count of each "
                    "instance's learned visits: resume with the option it was saved with (0), or start a new run."
                )
            self.retained = state["retained"].clone()
