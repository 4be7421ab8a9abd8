"""Training-set noise of the kind where selection is known to matter: wrong class labels and misaligned pairs.

Only the training split is corrupted; validation and test stay clean, so a method that learns the noise is seen to
lose. The noise is drawn from its own seed (not the run's), so every strategy and seed trains on the same corrupted
set, and the corrupted indices are returned so that a report can say how much of the noise each strategy kept.
"""

import numpy as np


def choose_noisy(num_instances: int, fraction: float, seed: int) -> np.ndarray:
    """`round(fraction * num_instances)` distinct indices, sorted, drawn with `seed`.

    Example:
        >>> choose_noisy(10, 0.3, seed=0).tolist() == choose_noisy(10, 0.3, seed=0).tolist()
        True
        >>> len(choose_noisy(10, 0.3, seed=0))
        3
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"The noise fraction must be in [0, 1], got {fraction}.")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(num_instances, size=round(fraction * num_instances), replace=False))


def flip_labels(labels, num_classes: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Replaces the label of `fraction` of the instances by a uniformly drawn *other* class.

    Returns the new labels and the sorted noisy indices; every noisy label differs from its original.
    """
    if num_classes < 2:
        raise ValueError(f"Flipping labels needs at least 2 classes, got {num_classes}.")
    labels = np.asarray(labels).copy()
    noisy = choose_noisy(len(labels), fraction, seed)
    # an offset in 1..C-1 added modulo C is uniform over the other classes
    offsets = np.random.default_rng([seed, 1]).integers(1, num_classes, size=len(noisy))
    labels[noisy] = (labels[noisy] + offsets) % num_classes
    return labels, noisy


def misalign_pairs(num_pairs: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """For parallel text: `target_of[i]` is the index of the target sentence that pair `i` gets.

    The targets of `fraction` of the pairs are shuffled among those pairs as one cycle, so that no chosen pair keeps
    its own target (the misalignment of web-crawled parallel data); the other pairs keep theirs. Returns
    `target_of` and the sorted misaligned indices.

    Example:
        >>> target_of, noisy = misalign_pairs(8, 0.5, seed=0)
        >>> sorted(target_of.tolist()) == list(range(8)), all(target_of[i] != i for i in noisy)
        (True, True)
    """
    noisy = choose_noisy(num_pairs, fraction, seed)
    target_of = np.arange(num_pairs)
    if len(noisy) < 2:
        return target_of, noisy[:0]  # one pair cannot be misaligned with itself
    order = np.random.default_rng([seed, 2]).permutation(noisy)
    target_of[order] = np.roll(order, -1)  # each chosen pair takes the next one's target in a random cycle
    return target_of, noisy


def shift_pairs(num_pairs: int, fraction: float, seed: int, block: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """For parallel text, the crawled-corpus kind: in `round(fraction * num_pairs / block)` blocks of `block`
    consecutive pairs, each target moves one line down (the block's last pair takes its first target), as when a
    document's sentence alignment slips by one line. Returns `target_of` and the sorted misaligned indices.

    Example:
        >>> target_of, noisy = shift_pairs(40, 0.5, seed=0, block=10)
        >>> len(noisy), all(target_of[i] == (i + 1 if (i + 1) % 10 else i - 9) for i in noisy)
        (20, True)
    """
    if block < 2:
        raise ValueError(f"A shifted block needs at least 2 pairs, got {block}.")
    blocks = choose_noisy(num_pairs // block, fraction * num_pairs / block / (num_pairs // block), seed)
    target_of = np.arange(num_pairs)
    for start in blocks * block:
        target_of[start : start + block] = np.roll(np.arange(start, start + block), -1)
    noisy = np.concatenate([np.arange(start, start + block) for start in blocks * block]) if len(blocks) else blocks
    return target_of, np.sort(noisy)
