"""`LossMemory`: each instance's last Boss loss and the step it was seen at, kept for free from the training step."""

import torch


def latest_across_ranks(accelerator, values: torch.Tensor, clocks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per instance, `values` (`(N,)` or `(N, ...)`) and `clocks` (`(N,)`) of the rank whose clock for it is the
    largest (a collective call)."""
    device = accelerator.device
    all_values = accelerator.gather(values.to(device)[None]).cpu()  # (num_processes, N)
    all_clocks = accelerator.gather(clocks.to(device)[None]).cpu()
    latest, instances = all_clocks.argmax(dim=0), torch.arange(all_clocks.shape[1])
    return all_values[latest, instances], all_clocks[latest, instances]  # `values` may be (N, ...) rows


class LossMemory:
    """Per-instance memory over a training set of `num_instances`: `loss` (NaN until seen) and `step` (-1 until seen).

    Several processes each see their own shard: `merge` makes every rank hold, for each instance, the most recent
    entry of any rank, so that a decision made from the memory is the same wherever it is made.
    """

    def __init__(self, num_instances: int):
        self.loss = torch.full((num_instances,), float("nan"))
        self.step = torch.full((num_instances,), -1, dtype=torch.long)

    def update(self, indices: torch.Tensor, losses: torch.Tensor, step: int) -> None:
        indices = indices.detach().long().cpu()
        self.loss[indices] = losses.detach().float().cpu()
        self.step[indices] = step

    @property
    def seen(self) -> torch.Tensor:
        return self.step >= 0

    def merge(self, accelerator) -> None:
        """Takes, per instance, the entry of the rank that saw it last (a collective call: every rank must make it)."""
        if accelerator.num_processes > 1:
            self.loss, self.step = latest_across_ranks(accelerator, self.loss, self.step)

    def state_dict(self) -> dict:
        return {"loss": self.loss.clone(), "step": self.step.clone()}

    def load_state_dict(self, state: dict) -> None:
        if len(state["loss"]) != len(self.loss):
            raise ValueError(
                f"The saved loss memory covers {len(state['loss'])} instances but the training set has "
                f"{len(self.loss)}. Resume with the training set the checkpoint was made with."
            )
        self.loss, self.step = state["loss"].clone(), state["step"].clone()
