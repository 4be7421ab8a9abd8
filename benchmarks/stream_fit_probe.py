#!/usr/bin/env python
"""What the streamed pairs check's fit costs and finds, by fit budget and by how a later pair is scored.

On `stream_check.py`'s corpus (every Tatoeba en-fr pair, a quarter misaligned, in its seeded order) the check is
fitted on the first `--buffer` pairs with each encoder's pairs seen capped at each of `--max_pairs_seen`, then every
pair after the buffer is flagged three ways:
- `own_fold`: by the one encoder its content hashes to (what `StreamedPairsCheck` did first);
- `mean_score`: by the mean of every fold encoder's cosine (none trained on it), read with the buffer's mixture
  (what it does since this probe);
- `mean_posterior`: by the mean of the posteriors of every fold encoder's cosine.
Buffer pairs keep their own held-out encoder's flag in every rule (the others trained on them). The committed JSON
(97fb3ac) timed `own_fold` through the check itself (`own_fold_scoring_seconds`); since, the check's own scoring is
timed as `check_scoring_seconds`.

    python benchmarks/stream_fit_probe.py --data_dir ../shared/data

writes `benchmarks/results/probes/stream-fit.json`. Run it with nothing else running (the fit is timed).
"""

import json
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from transformers import HfArgumentParser

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.names import RESULTS  # noqa: E402
from benchmarks.runs import environment  # noqa: E402
from benchmarks.stream_check import StreamCheckArguments, corpus_file, found  # noqa: E402
from hf_autoassist.plausibility.stream import StreamedPairsCheck, pair_key  # noqa: E402

@dataclass
class StreamFitArguments(StreamCheckArguments):
    max_pairs_seen: list[int] = field(default_factory=lambda: [100_000, 50_000, 25_000])
    probe_output: str = field(default=str(RESULTS / "probes" / "stream-fit.json"))


def every_encoder(check: StreamedPairsCheck, sources: list, targets: list, chunk: int = 4096) -> torch.Tensor:
    """`(folds, N)` each pair's cosine under every fold encoder, `chunk` pairs padded at a time."""
    spans = range(0, len(sources), chunk)
    return torch.cat([check.cosines(sources[i : i + chunk], targets[i : i + chunk]) for i in spans], dim=1)


def main() -> dict:
    (bench,) = HfArgumentParser(StreamFitArguments).parse_args_into_dataclasses()
    path, noisy = corpus_file(bench)
    rows = [json.loads(line) for line in open(path)]
    sources, targets = [r["input_ids"] for r in rows], [r["labels"] for r in rows]
    later = slice(bench.buffer, None)
    records = {}
    for cap in bench.max_pairs_seen:
        start = time.perf_counter()
        check = StreamedPairsCheck.fit(sources[: bench.buffer], targets[: bench.buffer], seed=bench.seed,
                                       max_pairs_seen=cap)  # fmt: skip
        fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        check.flags(sources[later], targets[later])
        check_seconds = time.perf_counter() - start
        start = time.perf_counter()
        scores = every_encoder(check, sources[later], targets[later])
        every_seconds = time.perf_counter() - start
        # the encoder a pair's content hashes to: the first `StreamedPairsCheck`'s rule
        hashed = torch.tensor([int.from_bytes(pair_key(s, t)[:4], "little") % len(check.encoders)
                               for s, t in zip(sources[later], targets[later])])  # fmt: skip
        later_flags = {
            "own_fold": check.posterior(scores[hashed, torch.arange(len(hashed))]) > check.threshold,
            "mean_score": check.posterior(scores.mean(0)) > check.threshold,
            "mean_posterior": torch.stack([check.posterior(s) for s in scores]).mean(0) > check.threshold,
        }
        record = {"fit_seconds": round(fit_seconds, 1), "check_scoring_seconds": round(check_seconds, 1),
                  "every_encoder_scoring_seconds": round(every_seconds, 1),
                  "buffer": found(check.buffer.flagged, [i for i in noisy if i < bench.buffer])}  # fmt: skip
        for rule, flags in later_flags.items():
            record[rule] = found(torch.cat([check.buffer.flagged, flags]), noisy)
        records[str(cap)] = record
        print(cap, record, flush=True)
    result = {"max_pairs_seen": records, "command": "python benchmarks/stream_fit_probe.py " + shlex.join(sys.argv[1:]),
              "settings": asdict(bench), "environment": environment()}  # fmt: skip
    Path(bench.probe_output).parent.mkdir(parents=True, exist_ok=True)
    Path(bench.probe_output).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
