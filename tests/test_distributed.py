"""Two processes under `accelerate launch` on CPU (gloo): the ranks must agree on every epoch's selection."""

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.multiprocess]


@pytest.mark.parametrize(
    "accelerator_config,strategy",
    [({}, "autoassist"), ({"dispatch_batches": True}, "autoassist"), ({"split_batches": True}, "autoassist"),
     ({}, "random"), ({}, "infobatch")],
    ids=["shard", "dispatch_batches", "split_batches", "random", "infobatch"],
)  # fmt: skip
def test_two_ranks_agree_on_steps_and_split_the_kept_instances(tmp_path, accelerator_config, strategy):
    batch_per_round = 16 if accelerator_config.get("split_batches") else 32  # instances per step, all ranks together
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        str(REPO / "tests/scripts/train_two_ranks.py"), str(tmp_path), json.dumps(accelerator_config), strategy,
    ]  # fmt: skip
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    # a rank that yielded a different number of batches would make gloo abort or hang: the timeout catches a hang
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-4000:]

    ranks = [json.loads((tmp_path / f"rank-{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world_size"] == 2 for r in ranks)
    assert ranks[0]["global_step"] == ranks[1]["global_step"] == ranks[0]["max_steps"]
    assert ranks[0]["kept"] == ranks[1]["kept"]  # one selection, shared
    assert ranks[0]["weight_sums"] == ranks[1]["weight_sums"]  # and the same loss weights (InfoBatch's rescaling)
    if strategy == "autoassist":  # rank 0 decides from a memory that holds both ranks' losses
        assert ranks[0]["memory_seen"] >= 600 - 600 % batch_per_round
    if strategy == "infobatch":
        assert any(total is not None and total > 0 for total in ranks[0]["weight_sums"].values())

    for epoch, kept in ranks[0]["kept"].items():
        first, second = ranks[0]["trained"][epoch], ranks[1]["trained"][epoch]
        assert len(first) == len(second)
        assert not set(first) & set(second), f"epoch {epoch}: an instance went to both ranks"
        assert sorted(first + second) == sorted(kept), f"epoch {epoch}: the ranks did not cover the selection"
    # warmup keeps every instance but the last 600 % (instances per step) of the pass, so every rank's batches are full
    full = 600 - 600 % batch_per_round
    assert len(ranks[0]["kept"]["0"]) == full
    later_epochs = [len(kept) for epoch, kept in ranks[0]["kept"].items() if epoch != "0"]
    assert later_epochs and all(n < full and n % batch_per_round == 0 for n in later_epochs)
