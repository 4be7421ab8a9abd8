"""Two processes under `accelerate launch` or `torchrun` on CPU (gloo): the ranks must agree on every epoch's
selection, with gradient accumulation too, and a run resumed from a mid-run checkpoint ends as the uninterrupted one."""

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.multiprocess]


SCRIPT = str(REPO / "tests/scripts/train_two_ranks.py")
LAUNCHERS = {
    "accelerate": [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                   "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"],
    "torchrun": [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"],
}  # fmt: skip


def launch(launcher: str, output_dir, options: dict) -> list[dict]:
    """Trains with 2 processes (the Assistant's shrinking unless `options` name a strategy: it exercises the most
    of what the ranks share); returns what each rank recorded."""
    options = {"autoassist_strategy": "autoassist", **options}
    if not options.get("pairs"):  # the labels check ("auto" on class ids) decides at epoch 2: tested on its own
        options.setdefault("autoassist_plausibility", "none")
    command = [*LAUNCHERS[launcher], SCRIPT, str(output_dir), json.dumps(options)]
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    # a rank that yielded a different number of batches would make gloo abort or hang: the timeout catches a hang
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    return [json.loads((output_dir / f"rank-{r}.json").read_text()) for r in (0, 1)]


@pytest.mark.parametrize(
    "launcher,options",
    [("accelerate", {}), ("accelerate", {"accelerator_config": {"dispatch_batches": True}}),
     ("accelerate", {"accelerator_config": {"split_batches": True}}),
     ("accelerate", {"autoassist_strategy": "random"}), ("accelerate", {"autoassist_strategy": "infobatch"}),
     ("torchrun", {}), ("accelerate", {"gradient_accumulation_steps": 2}), ("accelerate", {"pairs": True, "autoassist_strategy": "random"}),
     ("accelerate", {"autoassist_assistant": "boss_features"}),
     ("accelerate", {"autoassist_strategy": "adaptive", "autoassist_learned_margin": 1.0,
                     "autoassist_learned_visits": 0}),
     # the ranks' shares of missed target tokens, merged before each decision as the losses are
     ("accelerate", {"pairs": True, "autoassist_strategy": "adaptive", "autoassist_token_reading": "argmax",
                     "autoassist_learned_margin": 1.0, "autoassist_learned_visits": 0})],
    ids=["shard", "dispatch_batches", "split_batches", "random", "infobatch", "torchrun", "accumulation",
         "plausibility", "boss_features", "adaptive", "adaptive_token_misses"],
)  # fmt: skip
def test_two_ranks_agree_on_steps_and_split_the_kept_instances(tmp_path, launcher, options):
    strategy = options.get("autoassist_strategy", "autoassist")
    # instances per forward step, all ranks together
    batch_per_round = 16 if options.get("accelerator_config", {}).get("split_batches") else 32
    ranks = launch(launcher, tmp_path, options)
    assert all(r["world_size"] == 2 for r in ranks)
    assert ranks[0]["global_step"] == ranks[1]["global_step"] == ranks[0]["max_steps"]
    assert ranks[0]["kept"] == ranks[1]["kept"]  # one selection, shared
    assert ranks[0]["weight_sums"] == ranks[1]["weight_sums"]  # and the same loss weights (InfoBatch's rescaling)
    trainable = 600 - len(ranks[0]["flagged"] or [])  # all but what the plausibility check flagged
    if strategy == "autoassist":  # rank 0 decides from a memory that holds both ranks' losses
        assert ranks[0]["memory_seen"] >= trainable - trainable % batch_per_round
    if options.get("autoassist_assistant") == "boss_features":  # and both ranks' Boss features
        assert ranks[0]["features_seen"] >= trainable - trainable % batch_per_round
    if options.get("autoassist_token_reading") == "argmax":  # and both ranks' shares of missed tokens
        assert ranks[0]["misses_seen"] >= trainable - trainable % batch_per_round
    if options.get("pairs"):  # the main process's flags, on both ranks, in no epoch's selection
        assert ranks[0]["flagged"] and ranks[0]["flagged"] == ranks[1]["flagged"]
        assert all(not set(kept) & set(ranks[0]["flagged"]) for kept in ranks[0]["kept"].values())
    if strategy == "infobatch":
        assert any(total is not None and total > 0 for total in ranks[0]["weight_sums"].values())

    for epoch, kept in ranks[0]["kept"].items():
        first, second = ranks[0]["trained"][epoch], ranks[1]["trained"][epoch]
        if strategy != "adaptive":  # thinned batches differ in size; their number is the plain run's (below)
            assert len(first) == len(second)
        assert not set(first) & set(second), f"epoch {epoch}: an instance went to both ranks"
        assert sorted(first + second) == sorted(kept), f"epoch {epoch}: the ranks did not cover the selection"
    # warmup keeps every instance but the last 600 % (instances per step) of the pass, so every rank's batches are full
    full = trainable - trainable % batch_per_round
    assert len(ranks[0]["kept"]["0"]) == full
    later_epochs = [len(kept) for epoch, kept in ranks[0]["kept"].items() if epoch != "0"]
    if strategy == "adaptive":  # every epoch takes the plain run's steps, each batch thinned to what it kept
        assert ranks[0]["global_step"] == 3 * (full // batch_per_round)
        assert later_epochs and all(n < full for n in later_epochs)
        assert any(total is not None and total > 0 for total in ranks[0]["weight_sums"].values())
        return
    assert later_epochs and all(n < full and n % batch_per_round == 0 for n in later_epochs)


@pytest.mark.parametrize("strategy,dispatch", [("random", True), ("random", False), ("autoassist", True)],
                         ids=["main_reads", "each_reads", "assistant"])  # fmt: skip
def test_two_ranks_select_from_a_stream_and_run_the_same_steps(tmp_path, strategy, dispatch):
    """By default accelerate's main process reads a stream and hands each rank its share of every batch; without
    `dispatch_batches` every rank reads it, filters it as the others do (one check, fitted on the main process and
    sent to each) and keeps its shard."""
    options = {"stream": True, "autoassist_strategy": strategy, "autoassist_keep_prob": [0.7], "autoassist_plausibility": "pairs",
               "autoassist_warmup_epochs": 0, "max_steps": 20, "accelerator_config": {"dispatch_batches": dispatch}}
    ranks = launch("accelerate", tmp_path, options)
    assert ranks[0]["global_step"] == ranks[1]["global_step"] == 20
    assert ranks[0]["flagged"] and ranks[0]["flagged"] == ranks[1]["flagged"]
    flagged = {tuple(t) for t in ranks[0]["flagged"]}
    first, second = ([tuple(t) for t in rank["trained"]] for rank in ranks)
    # 20 batches each, full but for the one that ends a pass over the stream
    assert min(len(first), len(second)) > 19 * 16 and not flagged & set(first + second)
    # the first pass over the ~450 pairs the check leaves: no pair went to both ranks
    assert not set(first[:100]) & set(second[:100])
    assert ranks[0]["weights"] == ranks[1]["weights"]


def test_a_two_process_run_resumed_mid_run_ends_as_the_uninterrupted_one(tmp_path):
    # the synchronous Assistant makes each rank's run reproducible to the bit, so that weights can be compared
    options = {"save_strategy": "steps", "save_steps": 4, "autoassist_synchronous": True}
    whole = launch("accelerate", tmp_path / "whole", options)
    # the first checkpoint after the warmup epoch (18 steps of 32 instances): inside the first shrunk epoch
    steps = sorted(int(p.name.split("-")[1]) for p in (tmp_path / "whole").glob("checkpoint-*"))
    step = next(s for s in steps if 18 < s < whole[0]["global_step"])
    checkpoint = tmp_path / "whole" / f"checkpoint-{step}"
    assert {p.name for p in checkpoint.glob("autoassist_state-*.pt")} == {"autoassist_state-0.pt", "autoassist_state-1.pt"}
    resumed = launch("accelerate", tmp_path / "resumed", {**options, "resume_from_checkpoint": str(checkpoint)})
    for rank in (0, 1):
        assert resumed[rank]["global_step"] == whole[rank]["global_step"]
        # the epochs trained after the checkpoint kept the same instances, and the weights ended the same
        for epoch, kept in resumed[rank]["kept"].items():
            assert kept == whole[rank]["kept"][epoch], f"rank {rank}, epoch {epoch}"
        assert resumed[rank]["weights"] == pytest.approx(whole[rank]["weights"], rel=1e-6, abs=1e-6)
    assert resumed[0]["weights"] == resumed[1]["weights"]  # the ranks hold one model


def test_two_ranks_agree_on_decisions_made_inside_the_epoch(tmp_path):
    """`autoassist_rescore_every`: rank 0 decides each block of the pass as the epoch goes, every rank follows, and
    a shrunk epoch ends on a whole accumulated step on both ranks."""
    options = {"autoassist_rescore_every": 2, "autoassist_warmup_epochs": 0.5, "gradient_accumulation_steps": 2,
               "autoassist_target_keep": 0.5}  # fmt: skip
    ranks = launch("accelerate", tmp_path, options)
    assert ranks[0]["global_step"] == ranks[1]["global_step"] == ranks[0]["max_steps"]
    assert ranks[0]["kept"] == ranks[1]["kept"]
    full = 600 - 600 % 32
    for epoch, kept in ranks[0]["kept"].items():
        first, second = ranks[0]["trained"][epoch], ranks[1]["trained"][epoch]
        assert len(first) == len(second) and not set(first) & set(second)
        assert sorted(first + second) == sorted(kept), f"epoch {epoch}: the ranks did not cover the selection"
        assert len(kept) == full or len(kept) % (32 * 2) == 0, f"epoch {epoch} kept {len(kept)}"
    assert len(ranks[0]["kept"]["0"]) < full  # the first epoch shrank after its half-epoch warmup
