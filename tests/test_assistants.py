import copy
import threading
import time

import pytest
import torch

from hf_autoassist.assistants import (
    AssistantWorker, BagOfTokensAssistant, BossFeatureAssistant, PixelAssistant, WithLossMemory, build_assistant,
)  # fmt: skip
from hf_autoassist.assistants.base import Assistant, logit_gradients
from hf_autoassist.assistants.labels import batch_ranks


def planted_pixels(n=3000, seed=0):
    """Random 28x28 images whose label is 0..9; class 3 images are the ones the 'Boss' finds hard."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 10, (n,), generator=g)
    pixels = torch.randint(0, 256, (n, 1, 28, 28), generator=g, dtype=torch.uint8)
    losses = torch.where(labels == 3, 2.0, 0.2) + 0.05 * torch.rand(n, generator=g)
    return pixels, labels, losses


def feed(worker, losses, epochs=3, batch_size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for batch in torch.randperm(len(losses), generator=g).split(batch_size):
            worker.submit(batch, losses[batch])


def test_pixel_assistant_learns_a_planted_rule_above_90_percent():
    pixels, labels, losses = planted_pixels()
    worker = AssistantWorker(PixelAssistant(pixels, labels), lr=0.5)
    try:
        feed(worker, losses)
        worker.flush()
        assert worker.confidence > 0.9
        scores = worker.score(torch.arange(len(labels)))
        accuracy = ((scores > 0.5) == (labels == 3)).float().mean().item()
        assert accuracy > 0.9
        assert worker.trained == worker.seen == 3 * len(labels)
    finally:
        worker.close()


def test_bag_of_tokens_assistant_learns_that_a_token_means_hard():
    g = torch.Generator().manual_seed(0)
    sources = [torch.randint(5, 100, (int(torch.randint(3, 12, (1,), generator=g)),), generator=g).tolist() for _ in range(2000)]
    hard = torch.tensor([4 in s or i % 5 == 0 for i, s in enumerate(sources)])
    for i in range(0, 2000, 5):
        sources[i].append(4)  # token 4 marks the hard instances
    targets = [[7, 8, -100] for _ in sources]
    losses = torch.where(hard, 3.0, 0.5)
    worker = AssistantWorker(BagOfTokensAssistant(sources, targets), lr=0.5, synchronous=True)
    feed(worker, losses, epochs=5)
    scores = worker.score(torch.arange(2000))
    assert ((scores > 0.5) == hard).float().mean().item() > 0.9


def test_bag_of_tokens_sums_the_weights_of_each_rows_own_tokens():
    assistant = BagOfTokensAssistant([[1, 2], [3], []], [[4, -100], [], [5, 5]], vocab_size=6)
    with torch.no_grad():
        assistant.source_weights.weight.copy_(torch.arange(6.0)[:, None])
        assistant.target_weights.weight.copy_(10 * torch.arange(6.0)[:, None])
        assistant.bias.fill_(0.5)
    torch.testing.assert_close(assistant(torch.tensor([2, 0, 1])), torch.tensor([100.5, 43.5, 3.5]))


def test_full_queue_drops_the_oldest_batches_and_counts_them():
    class SlowAssistant(PixelAssistant):
        def forward(self, indices):
            time.sleep(0.05)
            return super().forward(indices)

    pixels, labels, losses = planted_pixels(n=400)
    worker = AssistantWorker(SlowAssistant(pixels, labels), queue_size=2)
    try:
        start = time.perf_counter()
        for batch in torch.arange(400).split(10):
            worker.submit(batch, losses[batch])
        # the Boss did not wait for the slow Assistant
        assert time.perf_counter() - start < 0.5
        worker.flush()
        assert worker.dropped > 0
        assert worker.trained + worker.dropped == worker.seen == 400
    finally:
        worker.close()


def test_an_assistant_failure_is_raised_in_the_training_process():
    class BrokenAssistant(Assistant):
        num_instances = 10

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, indices):
            raise FloatingPointError("planted failure")

    worker = AssistantWorker(BrokenAssistant())
    worker.submit(torch.arange(4), torch.ones(4))
    deadline = time.monotonic() + 10
    while worker.error is None and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(RuntimeError, match="planted failure"):
        worker.submit(torch.arange(4), torch.ones(4))
    assert not any(t.name == "autoassist-assistant" and t.is_alive() for t in threading.enumerate() if t is worker._thread)


def test_auto_picks_the_assistant_from_the_columns():
    import datasets

    images = datasets.Dataset.from_dict({"pixel_values": torch.zeros(4, 1, 8, 8).numpy(), "labels": [0, 1, 0, 1]})
    text = datasets.Dataset.from_dict({"input_ids": [[1, 2], [3]], "labels": [[4], [5, 6]]})
    assert isinstance(build_assistant("auto", images), PixelAssistant)
    assert isinstance(build_assistant("auto", text), BagOfTokensAssistant)
    # anything else (tabular, audio, raw text): the Boss's own features, recorded as it trains
    assert isinstance(build_assistant("auto", datasets.Dataset.from_dict({"text": ["a"]})), BossFeatureAssistant)


@pytest.mark.parametrize("shape", [(1, 6, 6), (6, 6)])
def test_fixed_shape_pixels_are_read_from_the_buffers_as_the_numpy_format_reads_them(shape):
    import datasets

    from hf_autoassist.columns import _read_column_now

    g = torch.Generator().manual_seed(0)
    feature = (datasets.Array3D if len(shape) == 3 else datasets.Array2D)(shape=shape, dtype="uint8")
    features = datasets.Features({"pixel_values": feature, "labels": datasets.Value("int64")})
    images = [torch.randint(0, 256, (n, *shape), generator=g, dtype=torch.uint8).numpy() for n in (7, 5)]
    parts = [datasets.Dataset.from_dict({"pixel_values": x, "labels": [1] * len(x)}, features=features) for x in images]
    dataset = datasets.concatenate_datasets(parts)  # two Arrow chunks
    assert dataset.data.column("pixel_values").num_chunks == 2
    shuffled, filtered = dataset.shuffle(seed=1).select(range(2, 11)), dataset.filter(lambda item: True).select([9, 0, 3])
    for view in (dataset, shuffled, filtered):
        fast = _read_column_now(view, "pixel_values")
        expected = view.with_format("numpy")["pixel_values"][:]
        assert fast.shape == expected.shape == (len(view), *shape)
        assert (fast == expected).all()


def test_number_columns_are_read_from_the_buffers_as_the_numpy_format_reads_them():
    import datasets

    from hf_autoassist.columns import _buffer_column, _read_column_now

    features = datasets.Features(
        {"labels": datasets.ClassLabel(num_classes=5), "ids": datasets.Value("int32"), "score": datasets.Value("float32"),
         "tokens": datasets.Sequence(datasets.Value("int64"))}
    )  # fmt: skip
    parts = [
        datasets.Dataset.from_dict(
            {"labels": [i % 5 for i in range(n)], "ids": list(range(n)), "score": [i / 3 for i in range(n)],
             "tokens": [[i] * (i % 3) for i in range(n)]}, features=features,
        )  # fmt: skip
        for n in (6, 4)
    ]
    dataset = datasets.concatenate_datasets(parts)
    for view in (dataset, dataset.shuffle(seed=2).select(range(1, 9)), dataset.filter(lambda item: item["ids"] > 1)):
        for column in ("labels", "ids", "score"):
            fast, expected = _buffer_column(view, column), view.with_format("numpy")[column][:]
            assert fast.shape == expected.shape == (len(view),) and (fast == expected).all()
        assert _buffer_column(view, "tokens") is None  # ragged: the numpy format reads it
        assert [list(row) for row in _read_column_now(view, "tokens")] == view["tokens"]


def test_a_column_with_missing_rows_is_read_row_by_row():
    import datasets

    from hf_autoassist.columns import _buffer_column

    features = datasets.Features({"pixel_values": datasets.Array2D(shape=(2, 2), dtype="float32")})
    dataset = datasets.Dataset.from_dict({"pixel_values": [[[1.0, 2.0], [3.0, 4.0]], None]}, features=features)
    assert _buffer_column(dataset, "pixel_values") is None
    assert _buffer_column(datasets.Dataset.from_dict({"labels": [1, None, 2]}), "labels") is None


def test_skill_is_zero_for_an_assistant_that_only_knows_the_majority_label():
    # 80% of the losses are low, and nothing in the pixels tells which: accuracy settles at the majority rate
    pixels, labels, _ = planted_pixels()
    g = torch.Generator().manual_seed(1)
    losses = torch.where(torch.rand(len(labels), generator=g) < 0.2, 5.0, 0.1)
    worker = AssistantWorker(PixelAssistant(pixels, labels), lr=0.05, synchronous=True, confidence="skill")
    feed(worker, losses, epochs=2)
    assert worker.accuracy > 0.6  # the paper's confidence: q = max(0.3, 1 - accuracy) would shrink epochs to ~40%
    assert worker.positive_rate == pytest.approx(0.2, abs=0.06)
    assert worker.skill < 0.15 and worker.confidence == worker.skill


def test_batch_median_labels_are_balanced():
    pixels, labels, losses = planted_pixels()
    worker = AssistantWorker(PixelAssistant(pixels, labels), synchronous=True, label="batch_median")
    feed(worker, torch.rand(len(labels)) ** 4, epochs=1)  # right-skewed: most losses are below the mean
    assert worker.positive_rate == pytest.approx(0.5, abs=0.03)
    running = AssistantWorker(PixelAssistant(pixels, labels), synchronous=True)
    feed(running, torch.rand(len(labels)) ** 4, epochs=1)
    assert running.positive_rate < 0.4


def test_a_label_rule_of_ones_own_drives_the_worker_and_the_running_mean_resumes():
    from hf_autoassist.assistants.labels import LabelRule

    class LowestLossLearned(LabelRule):
        name = "lowest_loss_learned"

        def label(self, indices, losses, assistant):
            return indices, (losses > losses.min()).float()

    pixels, labels, losses = planted_pixels()
    worker = AssistantWorker(PixelAssistant(pixels, labels), synchronous=True, label=LowestLossLearned())
    feed(worker, losses, epochs=1)
    assert worker.label == "lowest_loss_learned" and worker.positive_rate > 0.9
    # the paper's running mean is the rule's state, saved with the worker's and put back
    running = AssistantWorker(PixelAssistant(pixels, labels), synchronous=True, label="running_mean")
    feed(running, losses, epochs=1)
    state = running.state_dict()
    assert state["running_loss"] == pytest.approx(running.label_rule.running_loss) and state["running_loss"] > 0
    resumed = AssistantWorker(PixelAssistant(pixels, labels), synchronous=True, label="running_mean")
    resumed.load_state_dict(state)
    assert resumed.label_rule.running_loss == running.label_rule.running_loss
    with pytest.raises(ValueError, match="must be one of"):
        AssistantWorker(PixelAssistant(pixels, labels), synchronous=True, label="median")


def test_loss_memory_lets_the_assistant_learn_what_the_inputs_do_not_show():
    # each instance has its own persistent difficulty, unrelated to its pixels
    pixels, labels, _ = planted_pixels()
    g = torch.Generator().manual_seed(2)
    losses = torch.rand(len(labels), generator=g) ** 2 * 4
    plain = AssistantWorker(PixelAssistant(pixels, labels), lr=0.2, synchronous=True, label="batch_median")
    remembering = AssistantWorker(
        WithLossMemory(PixelAssistant(pixels, labels)), lr=0.2, synchronous=True, label="batch_median"
    )
    for worker in (plain, remembering):
        feed(worker, losses, epochs=4)
    assert plain.accuracy < 0.65
    assert remembering.accuracy > 0.8
    state = remembering.state_dict()["assistant"]  # the memory is saved with the Assistant
    assert "last_log_loss" in state and state["clock"] == 4 * len(labels)


def visit_three_kinds(workers, kind: torch.Tensor, visits: int, decay: float) -> torch.Tensor:
    """Feeds every worker `visits` passes over a planted stream of three kinds of instance, nothing in the pixels
    telling which: 0 still being learned (the loss falls by `1 - decay` per visit), 1 learned (low, flat) and 2
    mislabelled (high, flat, noisy). Returns the last pass's losses."""
    g = torch.Generator().manual_seed(3)
    n = len(kind)
    for visit in range(visits):
        jitter = 1 + 0.1 * torch.randn(n, generator=g)
        losses = torch.stack([2.0 * decay**visit * jitter, 0.05 * jitter, 2.5 * jitter.abs()])[kind, torch.arange(n)]
        for batch in torch.randperm(n, generator=torch.Generator().manual_seed(visit)).split(50):
            for worker in workers:
                worker.submit(batch, losses[batch])
    return losses


def mean_score_by_kind(worker, kind: torch.Tensor) -> list[float]:
    scores = worker.score(torch.arange(len(kind)))
    return [float(scores[kind == k].mean()) for k in range(3)]


def test_decline_label_prefers_instances_still_being_learned_over_learned_and_mislabelled_ones():
    # one third of each kind (the loss of those being learned falls by 30% per visit): the mislabelled are what a
    # loss-seeking label keeps most
    pixels, labels, _ = planted_pixels(n=1500)
    kind = torch.arange(1500) % 3  # 0 learning, 1 learned, 2 mislabelled
    decline = AssistantWorker(WithLossMemory(PixelAssistant(pixels, labels), track_decline=True), lr=0.2,
                              synchronous=True, label="decline", confidence="skill")  # fmt: skip
    loss_seeking = AssistantWorker(WithLossMemory(PixelAssistant(pixels, labels)), lr=0.2, synchronous=True,
                                   label="batch_median", confidence="skill")  # fmt: skip
    visit_three_kinds((decline, loss_seeking), kind, visits=8, decay=0.7)
    learning, learned, mislabelled = mean_score_by_kind(decline, kind)
    # a quarter of the flat instances' declines still beat the batch median by chance: their labels are 1 that often
    assert learning > max(learned, mislabelled) + 0.25 and max(learned, mislabelled) < 0.5, (learning, learned, mislabelled)
    assert decline.skill > 0.2  # an Assistant that knows nothing has none
    # the loss-seeking label ranks the mislabelled instances first
    seeking = mean_score_by_kind(loss_seeking, kind)
    assert seeking[2] > seeking[0] and seeking[2] > 0.7


def test_decline_is_read_before_the_new_loss_is_remembered():
    memory = WithLossMemory(PixelAssistant(*planted_pixels(n=4)[:2]), track_decline=True)
    first = torch.tensor([1.0, 2.0])
    declines, seen = memory.declines(torch.tensor([0, 1]), first)
    assert not seen.any() and torch.all(declines == 0)
    memory.remember(torch.tensor([0, 1]), first)
    declines, seen = memory.declines(torch.tensor([0, 1]), torch.tensor([0.5, 2.0]))
    assert seen.all()
    torch.testing.assert_close(declines, torch.tensor([float(torch.log(torch.tensor(2.0))), 0.0]))
    memory.remember(torch.tensor([0, 1]), torch.tensor([0.5, 2.0]))
    assert memory.memory_features(torch.tensor([0, 1])).shape == (2, 4)
    torch.testing.assert_close(memory.last_decline[:2], declines)
    # the feature is the decline in units of its running mean size
    torch.testing.assert_close(memory.memory_features(torch.tensor([0, 1]))[:, 3], declines / declines.abs().mean())


def test_decline_label_needs_the_loss_memory():
    pixels, labels, _ = planted_pixels(n=10)
    with pytest.raises(ValueError, match="WithLossMemory"):
        AssistantWorker(PixelAssistant(pixels, labels), synchronous=True, label="decline")


def test_reducible_label_prefers_instances_still_being_learned_over_learned_and_mislabelled_ones():
    # the same three kinds as above (40% learning, 40% learned, 20% mislabelled), now with their irreducible losses:
    # low for the learning and the learned ones (a model that never saw them predicts them), as high as their loss
    # for the mislabelled (nobody can predict a wrong label)
    pixels, labels, _ = planted_pixels(n=1500)
    kind = torch.tensor([0, 0, 1, 1, 2]).repeat(300)
    irreducible = torch.tensor([0.3, 0.05, 2.5])[kind]
    worker = AssistantWorker(WithLossMemory(PixelAssistant(pixels, labels), irreducible=irreducible), lr=0.2,
                             synchronous=True, label="reducible", confidence="skill")  # fmt: skip
    loss_seeking = AssistantWorker(WithLossMemory(PixelAssistant(pixels, labels)), lr=0.2, synchronous=True,
                                   label="batch_median", confidence="skill")  # fmt: skip
    losses = visit_three_kinds((worker, loss_seeking), kind, visits=5, decay=0.8)
    learning, learned, mislabelled = mean_score_by_kind(worker, kind)
    assert learning > max(learned, mislabelled) + 0.3, (learning, learned, mislabelled)
    assert worker.skill > 0.3
    # on the same stream the loss-seeking label ranks the mislabelled first; this one well below the learning ones
    seeking = mean_score_by_kind(loss_seeking, kind)
    assert seeking[2] >= seeking[0] and mislabelled < seeking[2] - 0.15, (seeking, mislabelled)
    # the memory's feature is the last reducible loss, as a log ratio
    feature = worker.assistant.memory_features(torch.tensor([0, 2]))[:, 3]
    expected = (losses[[0, 2]] / irreducible[[0, 2]]).log()
    torch.testing.assert_close(feature, expected, rtol=1e-4, atol=1e-4)


def test_learnable_label_keeps_to_instances_still_being_learned_when_the_boss_outgrows_the_irreducible_model():
    # the irreducible-loss model trained briefly: less confident than the Boss, on the right labels (0.4 where the
    # Boss reaches 0.05) and on the wrong ones (1.8 where the Boss's loss stays near 2.5), as measured on Fashion-MNIST
    # with flipped labels. A wrong label's loss is then above its irreducible loss, and "reducible" reads it as
    # something left to learn; ranks do not depend on either model's scale
    pixels, labels, _ = planted_pixels(n=1500)
    kind = torch.tensor([0, 0, 1, 1, 2]).repeat(300)
    jitter = 1 + 0.1 * torch.randn(1500, generator=torch.Generator().manual_seed(5))
    irreducible = torch.tensor([0.6, 0.4, 1.8])[kind] * jitter
    workers = {
        label: AssistantWorker(WithLossMemory(PixelAssistant(pixels, labels), irreducible=irreducible,
                                              learnable=label == "learnable"),
                               lr=0.2, synchronous=True, label=label, confidence="skill")
        for label in ("learnable", "reducible")
    }  # fmt: skip
    visit_three_kinds(workers.values(), kind, visits=5, decay=0.8)
    learning, learned, mislabelled = mean_score_by_kind(workers["learnable"], kind)
    # its labels need a loss neither low nor out of reach: the linear Assistant learns that order, with less margin
    assert learning > learned + 0.08 and learning > mislabelled + 0.15, (learning, learned, mislabelled)
    reducible = mean_score_by_kind(workers["reducible"], kind)
    assert reducible[2] > reducible[0] and reducible[2] > mislabelled + 0.4, (reducible, mislabelled)
    # the memory reads the label's priority from the last losses: normal CDFs standing in for batch ranks
    memory = workers["learnable"].assistant
    log_loss, log_irreducible = memory.last_log_loss[:5], irreducible[:5].log()
    spread = (memory.mean_square_log_loss - memory.mean_log_loss**2).sqrt()
    normal = torch.distributions.Normal(0.0, 1.0)
    expected = normal.cdf((log_loss - memory.mean_log_loss) / spread) * (
        1 - normal.cdf((log_irreducible - irreducible.log().mean()) / irreducible.log().std())
    ) - 0.25
    torch.testing.assert_close(memory.memory_features(torch.arange(5))[:, 4], expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="irreducible="):
        WithLossMemory(PixelAssistant(pixels, labels), learnable=True)


def test_batch_ranks_run_from_zero_to_one_in_order():
    values = torch.tensor([2.0, -1.0, 7.0, 3.0])
    assert batch_ranks(values).tolist() == pytest.approx([1 / 3, 0.0, 1.0, 2 / 3])
    assert batch_ranks(torch.tensor([4.0])).tolist() == [0.0]


def test_reducible_label_needs_the_irreducible_losses():
    pixels, labels, _ = planted_pixels(n=10)
    with pytest.raises(ValueError, match="irreducible"):
        AssistantWorker(WithLossMemory(PixelAssistant(pixels, labels)), synchronous=True, label="reducible")
    with pytest.raises(ValueError, match="learnable"):
        AssistantWorker(WithLossMemory(PixelAssistant(pixels, labels)), synchronous=True, label="learnable")
    with pytest.raises(ValueError, match="one loss per instance"):
        WithLossMemory(PixelAssistant(pixels, labels), irreducible=torch.zeros(9))


class BusyPixelAssistant(PixelAssistant):
    """Takes `busy` seconds of CPU per forward: an Assistant too costly for the Boss's cores."""

    busy = 0.004

    def forward(self, indices):
        end = time.thread_time() + self.busy
        while time.thread_time() < end:
            pass
        return super().forward(indices)


def test_the_thread_keeps_within_its_cpu_share_and_drops_what_it_cannot_learn():
    pixels, labels, losses = planted_pixels(n=640)
    worker = AssistantWorker(BusyPixelAssistant(pixels, labels), queue_size=4, cpu_share=0.1)
    start = time.perf_counter()
    for _ in range(5):  # a Boss taking 2 ms per step: the unbounded thread would want two cores' worth
        for batch in torch.arange(640).split(32):
            worker.submit(batch, losses[batch])
            time.sleep(0.002)
    elapsed = time.perf_counter() - start
    used = worker.train_cpu_seconds
    # within the share, give or take the batch being learned when it was read
    assert used <= 0.1 * elapsed + 2 * BusyPixelAssistant.busy + 0.01, (used, elapsed)
    assert worker.dropped > 0 and worker.throttled_seconds > 0
    assert worker.metrics()["autoassist/assistant_cpu_share"] <= 0.2
    worker.close()
    assert worker.trained + worker.dropped == worker.seen  # nothing lost unaccounted


def test_cpu_share_must_be_a_share():
    pixels, labels, _ = planted_pixels(n=10)
    with pytest.raises(ValueError, match="cpu_share"):
        AssistantWorker(PixelAssistant(pixels, labels), cpu_share=0.0)


def _assistants_with_closed_forms():
    pixels, labels, losses = planted_pixels(n=50)
    g = torch.Generator().manual_seed(1)
    sources = [torch.randint(0, 30, (int(n),), generator=g).tolist() for n in torch.randint(0, 6, (50,), generator=g)]
    targets = [s[:2] + [-100] for s in sources]
    memory = WithLossMemory(
        PixelAssistant(pixels, labels), track_decline=True, irreducible=losses.flip(0), learnable=True
    )
    return {
        "pixels": PixelAssistant(pixels, labels),
        "bag_of_tokens": BagOfTokensAssistant(sources, targets),
        "bag_of_tokens_dim_4": BagOfTokensAssistant(sources, targets, dim=4),
        "memory": memory,
    }, losses


@pytest.mark.parametrize("name", ["pixels", "bag_of_tokens", "bag_of_tokens_dim_4", "memory"])
def test_closed_form_steps_match_autograd(name):
    """Parameters are compared after both steps: a wrong first step leaves them apart too."""
    assistants, losses = _assistants_with_closed_forms()
    closed = assistants[name]
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():  # away from the zero start, where some gradients vanish
        for parameter in closed.parameters():
            parameter.normal_(generator=g)
    if name == "memory":  # memory features that are not all zero: two visits remembered
        for _ in range(2):
            closed.remember(torch.arange(0, 50, 2), losses[::2] * torch.rand(25, generator=g))
    reference = copy.deepcopy(closed)
    # `learn` (the worker's call: prediction, then a step towards labels), then `descend` from given gradients
    batch = torch.tensor([3, 7, 7, 12, 40])
    targets = torch.randint(0, 2, (len(batch),), generator=g).float()
    expected_logits = reference(batch).detach()
    Assistant.descend(reference, batch, logit_gradients(expected_logits, targets), 0.3)
    torch.testing.assert_close(closed.learn(batch, targets, 0.3), expected_logits)
    batch = torch.arange(0, 50, 3)
    grads = torch.randn(len(batch), generator=g)
    Assistant.descend(reference, batch, grads, 0.3)
    closed.descend(batch, grads, 0.3)
    for (key, expected), actual in zip(reference.state_dict().items(), closed.state_dict().values()):
        torch.testing.assert_close(actual, expected, msg=f"{name}: {key}")


def test_a_subclass_that_redefines_forward_learns_through_autograd():
    pixels, labels, _ = planted_pixels(n=20)

    class Doubled(PixelAssistant):
        def forward(self, indices):
            return 2 * super().forward(indices)

    class Shifted(WithLossMemory):
        def forward(self, indices):
            return super().forward(indices) + 1.0

    fallback = Assistant._learn_through_autograd
    assert Doubled.descend is Assistant.descend and Doubled.learn is fallback
    assert Shifted.descend is Assistant.descend and Shifted.learn is fallback
    assistant = Doubled(pixels, labels)
    before = assistant.linear.weight.clone()
    assistant.descend(torch.arange(4), torch.ones(4), 0.1)
    expected = before[0] - 0.1 * 2 * assistant.features[:4].sum(0)
    torch.testing.assert_close(assistant.linear.weight[0], expected)

    # its `learn`: the prediction before the step, the step autograd gives, and one forward for both
    calls = []

    class Counted(Doubled):
        def forward(self, indices):
            calls.append(len(indices))
            return super().forward(indices)

    learner, reference = Counted(pixels, labels), Doubled(pixels, labels)
    with torch.no_grad():
        for a, b in zip(learner.parameters(), reference.parameters()):
            a.normal_(generator=torch.Generator().manual_seed(3)), b.copy_(a)
    batch, targets = torch.arange(6), torch.tensor([1.0, 0, 1, 1, 0, 0])
    expected_logits = reference(batch).detach()
    Assistant.descend(reference, batch, logit_gradients(expected_logits, targets), 0.2)
    torch.testing.assert_close(learner.learn(batch, targets, 0.2), expected_logits)
    for a, b in zip(learner.parameters(), reference.parameters()):
        torch.testing.assert_close(a, b)
    assert calls == [6]
