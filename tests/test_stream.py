"""Selection on a streamed training set: the pairs check learned from the stream's first pairs and applied to each
later one, `random` on a stream, resume mid-stream, and the strategies a stream cannot run."""

import pytest
import torch
from datasets import Dataset
from torch.utils.data import IterableDataset

from hf_autoassist import AutoAssistSeq2SeqConfig, AutoAssistSeq2SeqTrainer
from hf_autoassist.plausibility.stream import StreamedPairsCheck, pair_key
from hf_autoassist.stream import SelectedStream

from conftest import multi30k_token_pairs
from test_translation import pad_pairs, tiny_marian

NUM_PAIRS = 3000
BUFFER = 1500


@pytest.fixture(scope="module")
def pairs():
    """3,000 real Multi30k en-de pairs as token ids (0 pads, 1 ends a sequence), a quarter misaligned."""
    sources, _, targets, noisy = multi30k_token_pairs(NUM_PAIRS)

    def shifted(rows):
        return [[t + 2 for t in row[:30]] + [1] for row in rows]

    return shifted(sources), shifted(targets), noisy


class PairStream(IterableDataset):
    """A torch stream of pairs that records every pair it hands out, as a user's generator would read a corpus."""

    def __init__(self, sources, targets):
        self.sources, self.targets = sources, targets

    def __iter__(self):
        for source, target in zip(self.sources, self.targets):
            yield {"input_ids": source, "labels": target}


def test_a_check_fitted_on_the_first_pairs_finds_the_misaligned_later_ones(pairs):
    sources, targets, noisy = pairs
    check = StreamedPairsCheck.fit(sources[:BUFFER], targets[:BUFFER], seed=0)
    # the buffer is checked as a map-style set is, and each of its pairs scored again by the same held-out encoder
    buffer_flags = check.flags(sources[:BUFFER], targets[:BUFFER])
    assert torch.equal(buffer_flags, check.buffer.flagged)
    later = check.flags(sources[BUFFER:], targets[BUFFER:])
    # a later pair, which no encoder trained on, is scored by every encoder's mean; not by any one encoder
    one_pair = ([sources[BUFFER]], [targets[BUFFER]])
    embedded = (encoder(*map(torch.tensor, one_pair)) for encoder in check.encoders)
    cosines = torch.stack([(x * y).sum(-1) for x, y in embedded])
    assert torch.allclose(check.scores(*one_pair), cosines.mean(0), atol=1e-6)
    assert cosines.std() > 1e-4  # the encoders disagree, so the mean is not one of them
    recall, false_alarms = later[noisy[BUFFER:]].float().mean(), later[~noisy[BUFFER:]].float().mean()
    assert recall > 0.6 and false_alarms < 0.05, (recall, false_alarms)
    # a pair's flag is its content's: the same alone, in another order, through a saved state
    order = torch.randperm(NUM_PAIRS - BUFFER, generator=torch.Generator().manual_seed(1))
    shuffled = check.flags([sources[BUFFER + i] for i in order], [targets[BUFFER + i] for i in order])
    assert torch.equal(shuffled, later[order])
    restored = StreamedPairsCheck.from_state_dict(check.state_dict())
    assert torch.equal(restored.flags(sources[BUFFER:], targets[BUFFER:]), later)
    assert pair_key([5, 6, -100], [7]) == pair_key(torch.tensor([5, 6]), (7,))


def test_the_check_and_the_assistant_read_the_streams_first_pairs_once(tmp_path, pairs):
    from types import SimpleNamespace

    from hf_autoassist.stream import ASSISTANT_BUFFER, selected_stream

    class CountedStream(PairStream):
        def __init__(self, sources, targets):
            super().__init__(sources, targets)
            self.passes, self.read = 0, 0

        def __iter__(self):
            self.passes += 1
            for item in super().__iter__():
                self.read += 1
                yield item

    sources, targets, _ = pairs
    stream = CountedStream(sources, targets)
    args = AutoAssistSeq2SeqConfig(
        str(tmp_path), autoassist_strategy="autoassist", autoassist_stream_buffer=BUFFER, report_to="none"
    )
    alone = SimpleNamespace(is_main_process=True, num_processes=1)
    selected = selected_stream(args, stream, alone, SimpleNamespace(is_encoder_decoder=True, vocab_size=4002))
    assert selected.check is not None and selected.assistant is not None
    # "auto" looked at the first pair, the check read its buffer, the Assistant its first instances: one pass
    assert stream.passes == 1 and stream.read == max(BUFFER, ASSISTANT_BUFFER)


def test_the_stream_drops_flagged_pairs_and_random_keeps_its_share_by_place_in_the_stream(pairs):
    sources, targets, _ = pairs
    check = StreamedPairsCheck.fit(sources[:BUFFER], targets[:BUFFER], seed=0)
    stream = SelectedStream(PairStream(sources, targets), check)
    kept = list(stream)
    flags = check.flags(sources, targets)
    assert [item["input_ids"] for item in kept] == [s for s, f in zip(sources, flags.tolist()) if not f]
    assert stream.counts == {"read": NUM_PAIRS, "flagged": int(flags.sum()), "kept": len(kept)}

    # random: every instance in the warmup epoch, then its share; the same draws in a replayed epoch
    randomly = SelectedStream(PairStream(sources, targets), keep_prob=[0.5], warmup_epochs=1, seed=3)
    assert len(list(randomly)) == NUM_PAIRS
    randomly.set_epoch(1)
    first, again = list(randomly), list(randomly)
    assert first == again and abs(len(first) / NUM_PAIRS - 0.5) < 0.05
    randomly.set_epoch(2)
    assert list(randomly) != first


def streamed_run(tmp_path, stream, **options):
    defaults = dict(report_to="none", use_cpu=True, max_steps=12, per_device_train_batch_size=32, save_strategy="no",
                    logging_steps=4, disable_tqdm=True, autoassist_stream_buffer=BUFFER)  # fmt: skip
    args = AutoAssistSeq2SeqConfig(str(tmp_path), **{**defaults, **options})
    return AutoAssistSeq2SeqTrainer(model=tiny_marian(vocab=4002), args=args, train_dataset=stream, data_collator=pad_pairs)


@pytest.mark.parametrize("kind", ["torch", "datasets"])
def test_the_default_checks_a_streamed_seq2seq_set_and_never_trains_on_what_it_flags(tmp_path, pairs, kind):
    sources, targets, _ = pairs
    stream = PairStream(sources, targets)
    if kind == "datasets":
        stream = Dataset.from_dict({"input_ids": sources, "labels": targets}).to_iterable_dataset(num_shards=4)
    trained = []

    def recording(examples):
        trained.extend(tuple(e["labels"]) for e in examples)
        return pad_pairs(examples)

    trainer = streamed_run(tmp_path, stream, max_steps=40)
    trainer.data_collator = recording
    trainer.train()
    check = trainer.stream_selection.check
    assert check is not None and trainer.selection_run is None
    flagged = {tuple(t) for s, t, f in zip(sources, targets, check.flags(sources, targets).tolist()) if f}
    assert trained and not flagged & set(trained) and trainer.state.global_step == 40
    metrics = trainer.autoassist_metrics()
    assert 0.1 < metrics["autoassist/flagged_fraction"] < 0.4


def test_a_streamed_run_resumes_mid_stream_to_the_same_weights(tmp_path, pairs):
    sources, targets, _ = pairs
    options = dict(autoassist_strategy="random", autoassist_keep_prob=[0.6], autoassist_warmup_epochs=0,
                   autoassist_plausibility="pairs", max_steps=16, save_strategy="steps", save_steps=8)  # fmt: skip
    whole = streamed_run(tmp_path / "whole", PairStream(sources, targets), **options)
    whole.train()
    resumed = streamed_run(tmp_path / "resumed", PairStream(sources, targets), **options)
    fitted = []
    resumed_fit = StreamedPairsCheck.fit
    StreamedPairsCheck.fit = classmethod(lambda cls, *a, **k: fitted.append(1) or resumed_fit(*a, **k))
    try:
        resumed.train(resume_from_checkpoint=str(tmp_path / "whole" / "checkpoint-8"))
    finally:
        StreamedPairsCheck.fit = resumed_fit
    assert not fitted  # the checkpoint's check, not a new fit
    assert resumed.state.global_step == 16
    for (name, ours), theirs in zip(resumed.model.state_dict().items(), whole.model.state_dict().values()):
        torch.testing.assert_close(ours, theirs, msg=name)


def test_a_stream_names_what_it_can_run_when_a_strategy_needs_an_index(tmp_path, pairs):
    sources, targets, _ = pairs
    for options, named in [({"autoassist_strategy": "adaptive"}, "autoassist_strategy='adaptive'"),
                           ({"autoassist_strategy": "infobatch"}, "autoassist_strategy='infobatch'"),
                           ({"autoassist_strategy": "none", "autoassist_plausibility": "labels"},
                            "autoassist_plausibility='labels'")]:  # fmt: skip
        with pytest.raises(ValueError, match=f"{named}.*streamed.*'random'.*'pairs'"):
            streamed_run(tmp_path, PairStream(sources, targets), **options)
    # the Assistant decides where the stream is read: on the main process, which dispatches the batches
    from types import SimpleNamespace

    from hf_autoassist.stream import StreamHead, streamed_assistant

    each_reads = SimpleNamespace(num_processes=2, dispatch_batches=False)
    args = AutoAssistSeq2SeqConfig(str(tmp_path), autoassist_strategy="autoassist")
    with pytest.raises(ValueError, match="dispatch_batches"):
        streamed_assistant(args, StreamHead(PairStream(sources, targets)), each_reads, 4002)
    with pytest.raises(ValueError, match="autoassist_stream_buffer"):
        AutoAssistSeq2SeqConfig(str(tmp_path), autoassist_stream_buffer=4)


def test_the_assistant_selects_from_a_stream_reading_each_batch_it_learns_from(tmp_path, pairs):
    sources, targets, _ = pairs
    trainer = streamed_run(tmp_path, PairStream(sources, targets), autoassist_strategy="autoassist",
                           autoassist_plausibility="none", autoassist_stream_buffer=640, max_steps=60)  # fmt: skip
    trainer.train()
    assistant = trainer.stream_selection.assistant
    worker = assistant.strategy.worker
    # it learned from every instance the Boss trained on, and skipped some once past the first 640 of the stream
    assert worker.seen == worker.trained == 60 * 32
    counts = trainer.stream_selection.counts
    assert counts["kept"] < counts["read"] and trainer.state.global_step == 60
    # token ids the stream's first instances lacked are looked up within the Boss's vocabulary
    assert assistant.strategy.assistant.source_weights.num_embeddings == 4002
    # and a checkpoint keeps it: a resumed run starts from the Assistant it had
    state = trainer.stream_selection.state_dict()
    assert state["stream_check"] is None and state["stream_assistant"]["worker"] is not None


def test_the_pixels_assistant_reads_a_stream_of_images(tmp_path):
    from conftest import tiny_resnet
    from hf_autoassist import AutoAssistConfig, AutoAssistTrainer

    class ImageStream(IterableDataset):
        def __iter__(self):
            generator = torch.Generator().manual_seed(0)
            for i in range(400):
                label = i % 10
                yield {"pixel_values": torch.rand(1, 28, 28, generator=generator) + label / 10, "labels": label}

    args = AutoAssistConfig(str(tmp_path), report_to="none", use_cpu=True, max_steps=30, per_device_train_batch_size=16,
                            save_strategy="no", disable_tqdm=True, autoassist_strategy="autoassist",
                            autoassist_stream_buffer=96)  # fmt: skip
    trainer = AutoAssistTrainer(model=tiny_resnet(), args=args, train_dataset=ImageStream())
    trainer.train()
    selection = trainer.stream_selection
    assert selection.check is None and selection.assistant.strategy.worker.seen == 30 * 16
    assert selection.counts["kept"] < selection.counts["read"]
    with pytest.raises(ValueError, match="stream.*autoassist_assistant='boss_features'"):
        AutoAssistTrainer(model=tiny_resnet(), args=AutoAssistConfig(
            str(tmp_path), max_steps=2, autoassist_strategy="autoassist", autoassist_assistant="boss_features",
            report_to="none", use_cpu=True), train_dataset=ImageStream()).train()  # fmt: skip


def test_the_trainer_tells_the_stream_each_epoch_and_random_selects_after_the_warmup(tmp_path, pairs):
    sources, targets, _ = pairs
    trainer = streamed_run(tmp_path, PairStream(sources[:200], targets[:200]), autoassist_strategy="random",
                           autoassist_keep_prob=[0.5], autoassist_plausibility="none", autoassist_stream_buffer=10_000,
                           max_steps=14)  # fmt: skip
    trainer.train()
    selection = trainer.stream_selection
    # the first pass keeps all 200 (7 batches); later passes about half of them (4 batches each)
    assert selection.epoch >= 1 and trainer.state.global_step == 14
    assert 200 < selection.counts["read"] and selection.counts["kept"] < selection.counts["read"]
    assert selection.counts["read"] - selection.counts["kept"] > 0.3 * (selection.counts["read"] - 200)
