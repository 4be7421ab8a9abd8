"""Wrong class labels, found from the Boss's own representation: does an instance's label agree with the labels of
its nearest neighbours (deep kNN, Bahri et al. 2020) better than another label would?

Each instance's score is how many of its `k` nearest neighbours (cosine, in the features recorded as the Boss
trained, itself left out) carry its label; the null is how many carry a uniformly drawn other label, the score a
wrong label gets. The decision needs no shape for the scores of right labels: counts are discrete, so the observed
and the null distributions are histograms over 0..k, and the share of wrong labels is bounded by the smallest ratio
of their cumulative shares (counts up to m) where the null has mass: right labels only add to the observed share,
as the share of p-values above lambda bounds the true nulls in Storey's estimate. An instance's probability of a
wrong label is then `share * null(count) / observed(count)`, made non-increasing in the count. On clean data the
share is near zero and so is every probability.

Each instance also gets a suggested label for the report: the one most of its neighbours carry among the labels
other than its own. Training on the suggested labels instead of dropping the flagged instances was measured and
lost (README, "Wrong class labels").
"""

import torch

from . import Plausibility

# a count of the null must have at least this share of the instances for its ratio to bound the wrong labels' share
MIN_NULL_MASS = 0.01


def neighbours_for(num_instances: int, num_classes: int, largest: int = 100) -> int:
    """`k`: a quarter of a class's average size, between 5 and `largest`. Measured on the suite's Fashion-MNIST
    (10,000 images, its ResNet, seed 0, decided after two epochs, before the decision used cumulative shares):
    k = 50 flagged 1.04% of clean labels and, with 30% wrong, 87% of the wrong ones and 5.1% of the right; k = 100
    0.63%, and 85% / 3.9%. With cumulative shares, k = 100: 0.52%, and 88% / 4.0% (estimated share 0.302)."""
    return int(min(largest, max(5, num_instances // (4 * max(num_classes, 1)))))


# similarities held at once while the neighbours are found (64M floats: 256 MB), whatever the set's size
MAX_SIMILARITIES = 1 << 26


def neighbour_label_counts(
    features: torch.Tensor, labels: torch.Tensor, k: int, num_classes: int, chunk_size: int | None = None
) -> torch.Tensor:
    """`(N, num_classes)`: how many of each instance's `k` nearest neighbours (cosine) carry each label, found
    `chunk_size` rows at a time (default: as many as `MAX_SIMILARITIES` allows)."""
    if k >= len(features):
        raise ValueError(f"{k} neighbours need more than {len(features)} instances.")
    chunk_size = chunk_size or max(16, min(2048, MAX_SIMILARITIES // len(features)))
    normalized = torch.nn.functional.normalize(features.float(), dim=1)
    counts = torch.zeros(len(features), num_classes)
    for start in range(0, len(features), chunk_size):
        similarity = normalized[start : start + chunk_size] @ normalized.T
        rows = torch.arange(len(similarity))
        similarity[rows, rows + start] = -2.0  # never its own neighbour
        neighbour_labels = labels[similarity.topk(k, dim=1).indices]
        counts[start : start + chunk_size].scatter_add_(1, neighbour_labels, torch.ones(neighbour_labels.shape))
    return counts


def wrong_label_posterior(own: torch.Tensor, null: torch.Tensor, k: int) -> tuple[float, torch.Tensor]:
    """The estimated share of wrong labels and each count's probability of a wrong label, `(k + 1,)`, from the
    observed counts `own` and the null counts `null` (integers in 0..k)."""
    observed = torch.bincount(own.long(), minlength=k + 1).double() / len(own)
    expected = torch.bincount(null.long(), minlength=k + 1).double() / len(null)
    # counts up to m: a right label only adds to the observed share, so each ratio bounds the wrong labels' share
    observed_below, expected_below = observed.cumsum(0), expected.cumsum(0)
    informative = expected_below >= MIN_NULL_MASS
    share = float((observed_below[informative] / expected_below[informative]).min().clamp(0.0, 1.0))
    posterior = (share * expected / observed.clamp_min(1e-12)).clamp(0.0, 1.0)
    return share, torch.cummin(posterior, 0).values.float()  # more agreeing neighbours is never more suspicious


def label_plausibility(
    features: torch.Tensor, labels: torch.Tensor, threshold: float = 0.5, seed: int = 0, k: int | None = None
) -> Plausibility:
    """Scores and flags every instance's label from `features` `(N, F)` and `labels` `(N,)` class ids."""
    num_classes = int(labels.max()) + 1
    if num_classes < 2:
        raise ValueError(
            "The labels plausibility check compares an instance's label with other labels: it needs 2+ classes."
        )
    k = neighbours_for(len(labels), num_classes) if k is None else k
    counts = neighbour_label_counts(features, labels, k, num_classes)
    generator = torch.Generator().manual_seed(seed)
    other = (labels + torch.randint(1, num_classes, labels.shape, generator=generator)) % num_classes
    rows = torch.arange(len(labels))
    own, null = counts[rows, labels], counts[rows, other]
    share, posterior = wrong_label_posterior(own, null, k)
    posterior = posterior[own.long()]
    suggested = counts.scatter(1, labels[:, None], -1.0).argmax(1)  # the neighbours' commonest other label
    return Plausibility("labels", own / k, posterior, posterior > threshold, share, threshold, suggested)
