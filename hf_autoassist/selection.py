"""The shrinking rule of AutoAssist as plain functions: Assistant scores in, a keep mask out."""

import torch


def acceptance_probability(scores: torch.Tensor, confidence: float, base_prob: float) -> torch.Tensor:
    """Chance that each instance is trained on, shape of `scores`.

    An instance is accepted outright with probability `q = max(base_prob, 1 - confidence)`, else with the
    Assistant's predicted probability `s`: `p = q + (1 - q) * s`. An untrained Assistant (confidence 0) keeps
    everything; a confident one that scores everything 0 still keeps `base_prob` of the data.

    Example:
        >>> acceptance_probability(torch.tensor([0.0, 0.5, 1.0]), confidence=0.9, base_prob=0.3)
        tensor([0.3000, 0.6500, 1.0000])
    """
    q = max(base_prob, 1.0 - confidence)
    return q + (1.0 - q) * scores.clamp(0.0, 1.0)


def scaled_to_target(probs: torch.Tensor, target: float, floor: float, iterations: int = 50) -> torch.Tensor:
    """Acceptance probabilities `clamp(c * probs, floor, 1)` whose mean is `target`, the one scale `c` found by
    bisection: the order of the instances is the rule's, and the expected kept fraction is the budget asked for.
    With equal `probs` (an Assistant that knows nothing) it is random skipping at `target`. The floor gives way to
    a target below it.

    Example:
        >>> p = scaled_to_target(torch.tensor([0.2, 0.4, 1.0, 1.0]), target=0.5, floor=0.1)
        >>> round(float(p.mean()), 3), bool((p[:-1] <= p[1:]).all())
        (0.5, True)
    """
    floor = min(floor, target)
    probs = probs.clamp(min=1e-6)

    def kept(scale: float) -> float:
        return float((scale * probs).clamp(floor, 1.0).mean())

    low, high = 0.0, 1.0 / float(probs.min())  # kept(low) = floor <= target <= 1 = kept(high)
    for _ in range(iterations):
        middle = (low + high) / 2
        low, high = (middle, high) if kept(middle) < target else (low, middle)
    return (high * probs).clamp(floor, 1.0)


def check_base_prob(base_prob: float) -> None:
    """`autoassist_base_prob`, the floor every strategy that reads it puts on an instance's chance, is in (0, 1]."""
    if not 0.0 < base_prob <= 1.0:
        raise ValueError(
            f"`autoassist_base_prob` must be in (0, 1], got {base_prob}. It is the smallest chance any instance "
            "has to be trained on; use 1.0 to train on every instance."
        )


def sample_keep_mask(probs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Bernoulli draw per instance; deterministic for a given generator state."""
    return torch.rand(probs.shape, generator=generator) < probs


def selects_in_epoch(epoch, progress, warmup_epochs: float, full_data_finish: float):
    """Whether an epoch is shrunk: not during the warmup, and not in the full-data finish.

    `epoch` counts the epochs done, `progress` the fraction of training done (epochs, or steps with `max_steps`),
    when the epoch starts; or both are tensors, one value per candidate, for decisions inside an epoch.

    Example:
        >>> [selects_in_epoch(e, e / 8, warmup_epochs=1, full_data_finish=0.125) for e in range(8)]
        [False, True, True, True, True, True, True, False]
    """
    return (epoch >= warmup_epochs) & (progress < 1.0 - full_data_finish)


def inverse_probability_weights(probs: torch.Tensor) -> torch.Tensor:
    """Loss weights `1 / p` that make the expected gradient over the Bernoulli draws the full data's:
    `E[keep_i / p_i * g_i] = g_i`."""
    return 1.0 / probs.clamp(min=1e-6)
