"""Does a target fit its own source better than other sources? A contrastive pair encoder, cross-fitted.

Two bags of token embeddings, one per side, learn on the training pairs themselves that each source's embedding is
closest to its own target's among the batch's (a symmetric InfoNCE). A pair's score is the cosine of its two
embeddings. A misaligned pair's target is just another sentence, so its score is drawn like a re-paired one's (the
null of `mixture.py`) — as long as the encoder that scores it never trained on it: each of `folds` encoders learns
on the other folds and scores its own. No pretrained model, no trusted data, no Boss pass: a bag of embeddings per
side costs a small fraction of a Transformer step per pair.
"""

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# tokens read per side: the bag's mean hardly moves past this, and padding costs memory
MAX_TOKENS = 256
# pairs each encoder trains on, passes counted together: the check's training cost stops growing with the corpus
# (3,250 pairs in 5 folds take 32 passes, 83,200 pairs, under it; a million-pair corpus gets a tenth of one pass)
MAX_PAIRS_SEEN = 100_000


@dataclass
class PairScores:
    """scores `(N,)`: each pair's cosine under the encoder that did not train on it; null_scores `(N,)`: the same
    encoder's cosine of each source with another pair's target of its fold (a sample of what a misaligned pair
    scores); encoders: the fold's encoders, fold `(N,)`: the one that scored each pair, and pad_ids: the padding id
    of each side (the ids the encoders know are below it), for scoring pairs that come later (a stream's)."""

    scores: torch.Tensor
    null_scores: torch.Tensor
    encoders: list | None = None
    fold: torch.Tensor | None = None
    pad_ids: tuple[int, int] | None = None


class PairEncoder(nn.Module):
    """A mean of token embeddings per side, unit length: `(source_ids, target_ids) -> (x, y)`, each `(B, dim)`.
    Ids equal to a side's vocabulary size are padding."""

    def __init__(self, source_vocab: int, target_vocab: int, dim: int = 256):
        super().__init__()
        self.source = nn.EmbeddingBag(source_vocab + 1, dim, mode="mean", padding_idx=source_vocab)
        self.target = nn.EmbeddingBag(target_vocab + 1, dim, mode="mean", padding_idx=target_vocab)

    def forward(self, source_ids: torch.Tensor, target_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return F.normalize(self.source(source_ids), dim=-1), F.normalize(self.target(target_ids), dim=-1)


def padded_ids(sequences, pad_id: int | None = None) -> tuple[torch.Tensor, int]:
    """`(N, L)` token ids of ragged `sequences` (at most `MAX_TOKENS` each; negative ids such as -100 dropped), padded
    with `pad_id` (default: the largest id + 1), and that pad id."""
    rows = [torch.from_numpy(np.array(sequence, dtype=np.int64)).flatten()[:MAX_TOKENS] for sequence in sequences]
    rows = [row[row >= 0] for row in rows]
    if pad_id is None:
        pad_id = 1 + max((int(row.max()) for row in rows if len(row)), default=0)
    width = max((len(row) for row in rows), default=1) or 1
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
    return ids, pad_id


def contrastive_loss(x: torch.Tensor, y: torch.Tensor, temperature: float) -> torch.Tensor:
    """Each source against the batch's targets and each target against its sources (symmetric InfoNCE)."""
    logits = x @ y.T / temperature
    own = torch.arange(len(x))
    return (F.cross_entropy(logits, own) + F.cross_entropy(logits.T, own)) / 2


def cross_fitted_pair_scores(
    sources, targets, folds: int = 5, passes: int = 32, dim: int = 256, temperature: float = 0.1, lr: float = 1e-2,
    batch_size: int = 128, seed: int = 0, exclude: torch.Tensor | None = None, max_pairs_seen: int = MAX_PAIRS_SEEN,
) -> PairScores:  # fmt: skip
    """Every pair's score and null score under an encoder trained on the other `folds - 1` folds for `passes` passes,
    or until it has seen `max_pairs_seen` pairs (a bound on the cost of a large corpus), whichever comes first.

    `sources` / `targets`: one sequence of token ids per pair, each side in its own vocabulary. `exclude` `(N,)`
    bool: pairs no encoder trains on (those an earlier round flagged), scored all the same. Trains on CPU; the
    global RNG is left as it was (the Trainer's reproducibility depends on it).
    """
    if len(sources) != len(targets):
        raise ValueError(f"{len(sources)} sources but {len(targets)} targets: the scorer reads one of each per pair.")
    if folds < 2:
        raise ValueError(f"Cross-fitting needs at least 2 folds, got {folds}: an encoder never scores its own pairs.")
    if len(sources) < 2 * folds:
        raise ValueError(f"{len(sources)} pairs are too few for {folds} folds of at least 2 pairs each.")
    source_ids, source_pad = padded_ids(sources)
    target_ids, target_pad = padded_ids(targets)
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(sources), generator=generator)
    scores, null_scores = torch.zeros(len(sources)), torch.zeros(len(sources))
    encoders, fold_of = [], torch.zeros(len(sources), dtype=torch.long)
    for fold in range(folds):
        held_out = order[fold::folds]
        training = torch.cat([order[other::folds] for other in range(folds) if other != fold])
        if exclude is not None:
            training = training[~exclude[training]]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + fold)
            encoder = PairEncoder(source_pad, target_pad, dim)
        optimizer = torch.optim.Adam(encoder.parameters(), lr=lr, fused=True)
        seen = 0
        for _ in range(passes):
            if seen >= max_pairs_seen:
                break
            shuffled = training[torch.randperm(len(training), generator=generator)][: max_pairs_seen - seen]
            seen += len(shuffled)
            for start in range(0, len(shuffled), batch_size):
                batch = shuffled[start : start + batch_size]
                if len(batch) < 2:  # one pair has no other to be told apart from
                    continue
                loss = contrastive_loss(*encoder(source_ids[batch], target_ids[batch]), temperature)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        with torch.no_grad():
            x, y = encoder(source_ids[held_out], target_ids[held_out])
        fold_scores = cosine_scores(x, y, generator)
        scores[held_out], null_scores[held_out] = fold_scores.scores, fold_scores.null_scores
        encoders.append(encoder.eval())
        fold_of[held_out] = fold
    return PairScores(scores, null_scores, encoders, fold_of, (source_pad, target_pad))


def cosine_scores(x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> PairScores:
    """Each pair's cosine from unit-length source and target embeddings `(N, dim)`, and each source's cosine with
    the target of the next pair in a random cycle (never its own): the null sample of what a misaligned pair scores."""
    cycle = torch.randperm(len(x), generator=generator)
    other = torch.empty_like(cycle)
    other[cycle] = cycle.roll(-1)
    return PairScores((x * y).sum(-1), (x * y[other]).sum(-1))
