import pytest
import torch

from hf_autoassist.sampler import AssistedBatchSampler, RescoringBatchSampler
from hf_autoassist.selection import acceptance_probability, sample_keep_mask


def flatten(sampler):
    return [i for batch in sampler for i in batch]


def test_without_selection_every_index_once_per_epoch():
    sampler = AssistedBatchSampler(10, batch_size=3, seed=0)
    sampler.set_epoch(0)
    assert sorted(flatten(sampler)) == list(range(10))
    assert len(sampler) == 4 and [len(b) for b in sampler] == [3, 3, 3, 1]


def test_drop_last_yields_only_full_batches():
    sampler = AssistedBatchSampler(10, batch_size=3, seed=0, drop_last=True)
    sampler.set_epoch(0)
    assert len(sampler) == 3 and all(len(b) == 3 for b in sampler)


def test_order_depends_on_seed_and_epoch_only():
    a, b = AssistedBatchSampler(50, 4, seed=3), AssistedBatchSampler(50, 4, seed=3)
    a.set_epoch(2), b.set_epoch(2)
    assert flatten(a) == flatten(b)
    b.set_epoch(3)
    assert flatten(a) != flatten(b)


def test_set_epoch_is_idempotent():
    calls = []

    def select(epoch, candidates):
        calls.append(epoch)
        return candidates % 2 == 0

    sampler = AssistedBatchSampler(20, 4, seed=0, select_fn=select)
    for _ in range(3):
        sampler.set_epoch(1)
    assert calls == [1]
    assert sorted(flatten(sampler)) == list(range(0, 20, 2))
    assert sampler.kept_fraction == 0.5 and len(sampler) == 3


def test_batches_are_filled_from_accepted_indices_only():
    sampler = AssistedBatchSampler(100, 8, seed=0, select_fn=lambda epoch, idx: idx >= 90)
    sampler.set_epoch(0)
    batches = list(sampler)
    assert [len(b) for b in batches] == [8, 2]
    assert all(i >= 90 for b in batches for i in b)


def test_every_instance_is_accepted_at_least_base_prob_often():
    """An Assistant that scores everything 0 with full confidence: each instance ~base_prob of the epochs."""
    n, epochs, base_prob = 200, 400, 0.3

    def select(epoch, candidates):
        probs = acceptance_probability(torch.zeros(len(candidates)), confidence=1.0, base_prob=base_prob)
        return sample_keep_mask(probs, torch.Generator().manual_seed(epoch))

    sampler = AssistedBatchSampler(n, 16, seed=0, select_fn=select)
    counts = torch.zeros(n)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        counts[flatten(sampler)] += 1
    rates = counts / epochs
    assert abs(rates.mean().item() - base_prob) < 0.01
    # binomial(400, 0.3) has std 0.023: 5 std below the floor would mean a broken floor
    assert rates.min().item() > base_prob - 5 * (base_prob * (1 - base_prob) / epochs) ** 0.5


def test_bad_sizes_are_rejected_at_construction():
    with pytest.raises(ValueError, match="at least one instance"):
        AssistedBatchSampler(0, 4)
    with pytest.raises(ValueError, match="batch_size"):
        AssistedBatchSampler(10, 0)


def test_acceptance_rate_never_falls_below_base_prob_whatever_the_scores():
    n, epochs, base_prob = 100, 400, 0.3
    scores = torch.rand(n, generator=torch.Generator().manual_seed(0)) ** 4  # many near 0
    scores[:10] = 0.0

    def select(epoch, candidates):
        probs = acceptance_probability(scores[candidates], confidence=0.95, base_prob=base_prob)
        return sample_keep_mask(probs, torch.Generator().manual_seed(1000 + epoch))

    sampler = AssistedBatchSampler(n, 16, seed=1, select_fn=select)
    counts = torch.zeros(n)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        counts[flatten(sampler)] += 1
    rates = counts / epochs
    tolerance = 5 * (base_prob * (1 - base_prob) / epochs) ** 0.5
    assert rates.min().item() > base_prob - tolerance
    # and the Assistant's scores still matter: high scorers are kept more often than the zeros
    assert rates[scores > 0.5].mean() > rates[:10].mean() + 0.2


def test_padding_to_a_multiple_tops_up_with_rejected_candidates():
    sampler = AssistedBatchSampler(100, 4, seed=0, select_fn=lambda e, idx: idx < 37, pad_to_multiple_of=8)
    sampler.set_epoch(0)
    kept = flatten(sampler)
    assert len(kept) == 40 and len(set(kept)) == 40
    assert set(range(37)) <= set(kept)  # every accepted instance is still there


def test_padding_trims_when_too_few_were_rejected():
    sampler = AssistedBatchSampler(30, 4, seed=0, select_fn=lambda e, idx: idx != 0, pad_to_multiple_of=8)
    sampler.set_epoch(0)
    assert len(sampler.kept) == 24 and len(set(sampler.kept.tolist())) == 24


def test_state_dict_restores_the_epoch_without_deciding_again():
    calls = []

    def select(epoch, candidates):
        calls.append(epoch)
        return torch.rand(len(candidates)) < 0.5

    sampler = AssistedBatchSampler(50, 4, seed=0, select_fn=select)
    sampler.set_epoch(3)
    restored = AssistedBatchSampler(50, 4, seed=0, select_fn=select)
    restored.load_state_dict(sampler.state_dict())
    restored.set_epoch(3)
    assert calls == [3] and flatten(restored) == flatten(sampler)
    with pytest.raises(ValueError, match="training set the checkpoint was made with"):
        AssistedBatchSampler(49, 4).load_state_dict(sampler.state_dict())


# ---- thinned batches: the plain run's steps, fewer instances in each ------------------------------------------------
@pytest.mark.parametrize("pad", [None, 8])
def test_keep_steps_thins_each_batch_of_the_full_pass_in_place(pad):
    select = lambda epoch, idx: idx % 3 == 0  # noqa: E731
    thinned = AssistedBatchSampler(50, 4, seed=0, select_fn=select, keep_steps=True, pad_to_multiple_of=pad)
    full = AssistedBatchSampler(50, 4, seed=0, pad_to_multiple_of=pad)
    assert len(thinned) == len(full)  # before the first epoch is decided too: the Trainer plans from it
    thinned.set_epoch(1), full.set_epoch(1)
    assert len(thinned) == len(full) == len(list(thinned))
    for batch, whole in zip(thinned, full):
        kept = [i for i in whole if i % 3 == 0]
        assert batch == (kept or whole[:1])  # its own slice's kept instances, in order; never empty
    assert thinned.kept_fraction < 0.5


@pytest.mark.parametrize("pad", [None, 8])
def test_thinned_batches_are_topped_up_to_a_multiple_from_their_own_slice(pad):
    select = lambda epoch, idx: idx % 5 < 2  # noqa: E731
    thinned = AssistedBatchSampler(200, 16, seed=0, select_fn=select, keep_steps=True, pad_to_multiple_of=pad,
                                   batch_multiple=4)  # fmt: skip
    full = AssistedBatchSampler(200, 16, seed=0, pad_to_multiple_of=pad)
    thinned.set_epoch(1), full.set_epoch(1)
    padding = set(thinned.padding.tolist())
    for batch, whole in zip(thinned, full):
        assert len(batch) % 4 == 0 or len(batch) == len(whole)
        assert set(batch) <= set(whole)  # topped up from its own slice only
        kept = [i for i in whole if i % 5 < 2]
        assert [i for i in batch if i not in padding] == kept  # every kept instance, and only the top-up besides
        assert len(batch) - len(kept) < 4  # the fewest that reach the multiple
    assert padding and all(i % 5 >= 2 for i in padding)
    again = AssistedBatchSampler(200, 16, seed=0, select_fn=select, keep_steps=True, pad_to_multiple_of=pad,
                                 batch_multiple=4)  # fmt: skip
    again.set_epoch(1)
    assert list(again) == list(thinned)  # the same top-up on every rank
    again.set_epoch(2)
    assert set(again.padding.tolist()) != padding  # drawn anew each pass


def test_keep_steps_state_dict_restores_the_thinned_batches_and_refuses_the_other_mode():
    sampler = AssistedBatchSampler(50, 4, seed=0, select_fn=lambda e, idx: idx < 20, keep_steps=True)
    sampler.set_epoch(2)
    restored = AssistedBatchSampler(50, 4, seed=0, select_fn=lambda e, idx: idx < 20, keep_steps=True)
    restored.load_state_dict(sampler.state_dict())
    assert list(restored) == list(sampler)
    with pytest.raises(ValueError, match="autoassist_keep_steps"):
        AssistedBatchSampler(50, 4, seed=0).load_state_dict(sampler.state_dict())


# ---- decisions inside the epoch -----------------------------------------------------------------------------------
class Blocks:
    """A block selection that keeps a third of the instances and writes down what it was asked, and when."""

    def __init__(self):
        self.calls = []  # (epoch, offset, block size, batches yielded before the decision)
        self.yielded = 0

    def __call__(self, epoch, candidates, offset):
        self.calls.append((epoch, offset, len(candidates), self.yielded))
        return candidates % 3 == 0


def iterate(sampler, blocks):
    out = []
    for batch in sampler:
        out.append(batch)
        blocks.yielded += 1
    return out


def test_rescoring_decides_the_pass_in_order_while_it_is_iterated():
    blocks = Blocks()
    sampler = RescoringBatchSampler(100, 4, rescore_every=2, seed=0, select_fn=blocks)
    sampler.set_epoch(0)
    assert len(sampler) == 25 and blocks.calls == []  # nothing decided yet: the full pass bounds the epoch
    batches = iterate(sampler, blocks)
    kept = [i for batch in batches for i in batch]
    assert sorted(kept) == [i for i in range(100) if i % 3 == 0] and len(sampler) == len(batches) == 9
    # consecutive blocks cover the pass once, and decisions come as the batches are used, not all at the start
    offsets = [offset for _, offset, _, _ in blocks.calls]
    sizes = [size for _, _, size, _ in blocks.calls]
    assert offsets == [sum(sizes[:i]) for i in range(len(sizes))] and sum(sizes) == 100
    assert len(blocks.calls) >= 3 and blocks.calls[-1][3] > 0
    # the order within the pass is the seeded shuffle's
    order = [i for i in sampler.candidates.tolist() if i % 3 == 0]
    assert kept == order


def test_rescoring_rounds_a_shrunk_epoch_to_whole_accumulated_steps():
    sampler = RescoringBatchSampler(100, 4, rescore_every=2, seed=0, select_fn=lambda e, c, o: c % 3 == 0,
                                    pad_to_multiple_of=8, round_to=16)  # fmt: skip
    sampler.set_epoch(0)
    kept = flatten(sampler)
    assert len(kept) == 48 and len(set(kept)) == 48 and {i for i in range(100) if i % 3 == 0} <= set(kept)


def test_rescoring_a_full_pass_is_the_epoch_that_keeps_everything():
    """Too few rejected to reach `round_to`: the full pass, trimmed to whole rounds, and nothing yielded is taken
    back (the trimmed tail is held back until the pass is decided)."""
    everything = AssistedBatchSampler(102, 4, seed=0, pad_to_multiple_of=8)
    everything.set_epoch(0)
    sampler = RescoringBatchSampler(102, 4, rescore_every=2, seed=0, select_fn=lambda e, c, o: c != 5,
                                    pad_to_multiple_of=8, round_to=16)  # fmt: skip
    sampler.set_epoch(0)
    assert len(sampler) == len(everything) == 24
    batches = list(sampler)
    assert len(batches) == 24 and all(len(b) == 4 for b in batches)
    assert len(set(flatten(sampler))) == 96


def test_rescoring_state_dict_resumes_mid_pass_without_deciding_again():
    def fresh(blocks):
        return RescoringBatchSampler(200, 4, rescore_every=3, seed=1, select_fn=blocks)

    reference_blocks = Blocks()
    reference = fresh(reference_blocks)
    reference.set_epoch(2)
    expected = iterate(reference, reference_blocks)

    blocks = Blocks()
    interrupted = fresh(blocks)
    interrupted.set_epoch(2)
    head = []
    for batch in interrupted:
        head.append(batch)
        if len(head) == 7:
            break
    restored_blocks = Blocks()
    restored = fresh(restored_blocks)
    restored.load_state_dict(interrupted.state_dict())
    restored.set_epoch(2)  # the same epoch: nothing is drawn again
    rest = list(restored)[7:]
    assert head + rest == expected
    assert restored_blocks.calls and restored_blocks.calls[0][1] == interrupted.decided  # went on where it stopped
    with pytest.raises(ValueError, match="`autoassist_rescore_every`"):
        AssistedBatchSampler(200, 4).load_state_dict(interrupted.state_dict())
    with pytest.raises(ValueError, match="`autoassist_rescore_every`"):
        fresh(Blocks()).load_state_dict(AssistedBatchSampler(200, 4).state_dict())


def test_rescoring_an_epoch_that_keeps_nothing_still_trains_one_batch():
    sampler = RescoringBatchSampler(40, 4, rescore_every=1, seed=0, select_fn=lambda e, c, o: torch.zeros(len(c), dtype=torch.bool))
    sampler.set_epoch(0)
    assert [len(b) for b in sampler] == [1]
