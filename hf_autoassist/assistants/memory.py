"""An Assistant that also reads what the training step already knows about each instance: its last Boss loss and how
long ago that was. InfoBatch lives on the first; AutoAssist's input features see neither."""

import torch
from torch import nn

from ..loss_memory import latest_across_ranks
from .base import Assistant, logit_gradients


def _normal_cdf(z: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1.0 + torch.erf(z / 2**0.5))


class WithLossMemory(Assistant):
    """`logit = base(indices) + w . [relative last loss, never seen, age (, last decline)]`.

    - relative last loss: `log(last loss) - running mean of log losses` (0 if never seen);
    - never seen: 1 until the Boss's loss on the instance has been learned from;
    - age: instances learned from since the instance was last seen, in epochs of the training set;
    - last decline (with `track_decline`): how far the loss fell between the instance's last two visits,
      `log(loss before) - log(loss then)` (0 until it was seen twice): the learnability signal of Dynamic Sentence
      Sampling (Wang et al., ACL 2018). An instance still being learned declines; a learned one and a mislabelled
      one do not.
    - last reducible loss (with `irreducible`): how far the last loss is above the instance's irreducible loss
      (RHO-LOSS), `log(last loss) - log(irreducible loss)` (0 until seen).
    - last learnability (with `irreducible` and `learnable`): the `"learnable"` label's priority read from the
      memory, `Phi(z(last log loss)) * (1 - Phi(z(log irreducible loss)))`, the normal CDF of each standardized log
      loss standing in for its rank in a batch, centred on 1/4 (0 until seen). The label is a product of ranks,
      which a linear model over the log losses predicts poorly (measured: skill 0.25-0.33 on noisy ResNet).

    The worker calls `remember` after it has learned from a batch, so each prediction it learns from uses the
    memory from before: the Assistant learns how far the last loss predicts the next label. With several processes
    each rank remembers its own shard; `merge` gives the deciding rank every rank's latest entries.

    Args:
        base (`Assistant`): the input-feature Assistant (pixels, bag of tokens) to extend.
        momentum (`float`, *optional*, defaults to `0.99`): of the running mean of log losses.
        track_decline (`bool`, *optional*, defaults to `False`): also remember each instance's last decline, and read
            it as a feature (for `autoassist_label="decline"`).
        learnable (`bool`, *optional*, defaults to `False`): with `irreducible`, also read the last learnability (for
            `autoassist_label="learnable"`).
        irreducible (`torch.Tensor`, *optional*): `(num_instances,)` irreducible losses
            ([`~hf_autoassist.irreducible.IrreducibleLosses`]); the last reducible loss becomes a feature (for
            `autoassist_label="reducible"`).
    """

    def __init__(
        self,
        base: Assistant,
        momentum: float = 0.99,
        track_decline: bool = False,
        irreducible: torch.Tensor | None = None,
        learnable: bool = False,
    ):
        super().__init__()
        self.base = base
        self.num_instances = base.num_instances
        self.momentum = momentum
        # persistent: saved with the Assistant in every checkpoint
        self.register_buffer("last_log_loss", torch.zeros(self.num_instances))
        self.register_buffer("last_clock", torch.full((self.num_instances,), -1.0))
        self.register_buffer("clock", torch.zeros(()))
        self.register_buffer("mean_log_loss", torch.zeros(()))
        self.track_decline = track_decline
        if track_decline:
            self.register_buffer("last_decline", torch.zeros(self.num_instances))
            # running mean of |decline|: the feature is read in its units, whatever the loss's scale and pace
            self.register_buffer("mean_abs_decline", torch.zeros(()))
        if irreducible is not None:
            if irreducible.shape != (self.num_instances,):
                raise ValueError(
                    f"`irreducible` needs one loss per instance, shape ({self.num_instances},), got "
                    f"{tuple(irreducible.shape)}."
                )
            self.register_buffer("irreducible", irreducible.detach().float().clone())
        else:
            self.irreducible = None
        if learnable and irreducible is None:
            raise ValueError("`learnable=True` reads each instance's irreducible loss: pass `irreducible=` too.")
        self.learnable = learnable
        if learnable:
            self.register_buffer("mean_square_log_loss", torch.zeros(()))  # with the mean, the spread of log losses
            # how low each irreducible loss is among them (about the share above it), once: they do not change
            log_irreducible = self.irreducible.clamp(min=1e-8).log()
            standard = (log_irreducible - log_irreducible.mean()) / log_irreducible.std().clamp(min=1e-6)
            self.register_buffer("predictable", 1.0 - _normal_cdf(standard))
        features = 3 + track_decline + (irreducible is not None) + learnable
        self.memory_weights = nn.Linear(features, 1, bias=False)
        nn.init.zeros_(self.memory_weights.weight)

    def memory_features(self, indices: torch.Tensor) -> torch.Tensor:
        """`(B, F)` features of `indices` from the memory: 3, plus one with `track_decline`, one with `irreducible`."""
        # each buffer gathered once: this runs in every Boss step
        last_clock, last_log_loss = self.last_clock[indices], self.last_log_loss[indices]
        seen = last_clock >= 0
        relative = torch.where(seen, last_log_loss - self.mean_log_loss, 0.0)
        age = torch.where(seen, (self.clock - last_clock) / self.num_instances, 0.0)
        features = [relative, (~seen).float(), age]
        if self.track_decline:
            features.append(self.last_decline[indices] / self.mean_abs_decline.clamp(min=1e-6))
        if self.irreducible is not None:
            reducible = last_log_loss - self.irreducible[indices].clamp(min=1e-8).log()
            features.append(torch.where(seen, reducible, 0.0))
        if self.learnable:
            spread = (self.mean_square_log_loss - self.mean_log_loss**2).clamp(min=1e-12).sqrt()
            high_loss = _normal_cdf((last_log_loss - self.mean_log_loss) / spread)
            priority = high_loss * self.predictable[indices] - 0.25
            features.append(torch.where(seen, priority, 0.0))
        return torch.stack(features, dim=1)

    @torch.no_grad()
    def declines(self, indices: torch.Tensor, losses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """How far each loss fell since the instance's previous visit, `log(before) - log(now)`, and whether there
        was a previous visit; read before `remember` stores the new losses."""
        seen = self.last_clock[indices] >= 0
        decline = self.last_log_loss[indices] - losses.clamp(min=1e-8).log()
        return torch.where(seen, decline, 0.0), seen

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        return self._logits(indices, self.memory_features(indices))

    @torch.no_grad()
    def descend(self, indices: torch.Tensor, logit_grads: torch.Tensor, lr: float) -> None:
        self._descend(indices, self.memory_features(indices), logit_grads, lr)

    @torch.no_grad()
    def learn(self, indices: torch.Tensor, targets: torch.Tensor, lr: float) -> torch.Tensor:
        memory = self.memory_features(indices)  # read once, for the prediction and its step
        logits = self._logits(indices, memory)
        self._descend(indices, memory, logit_gradients(logits, targets), lr)
        return logits

    def _logits(self, indices: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        return self.base(indices) + memory @ self.memory_weights.weight[0]

    def _descend(self, indices: torch.Tensor, memory: torch.Tensor, logit_grads: torch.Tensor, lr: float) -> None:
        self.memory_weights.weight[0].sub_(memory.T @ logit_grads, alpha=lr)
        self.base.descend(indices, logit_grads, lr)

    def _update_running(self, buffer: torch.Tensor, value: torch.Tensor, first: bool | None = None) -> None:
        """A running mean with `momentum`, started at its `first` value (by default the first batch remembered)."""
        first = bool(self.clock == 0) if first is None else first
        buffer.copy_(value if first else self.momentum * buffer + (1 - self.momentum) * value)

    @torch.no_grad()
    def remember(self, indices: torch.Tensor, losses: torch.Tensor) -> None:
        log_losses = losses.clamp(min=1e-8).log()
        if self.track_decline:
            declines, seen = self.declines(indices, losses)
            self.last_decline[indices] = declines
            if seen.any():  # from the first batch with second visits
                first = bool(self.mean_abs_decline == 0)
                self._update_running(self.mean_abs_decline, declines[seen].abs().mean(), first=first)
        self._update_running(self.mean_log_loss, log_losses.mean())
        if self.learnable:
            self._update_running(self.mean_square_log_loss, log_losses.pow(2).mean())
        self.last_log_loss[indices] = log_losses
        self.last_clock[indices] = self.clock
        self.clock += len(indices)

    @property
    def reads_boss_features(self) -> bool:
        return self.base.reads_boss_features

    @torch.no_grad()
    def record_features(self, indices: torch.Tensor, features: torch.Tensor) -> None:
        """The Boss's features of a trained batch, for a base Assistant that reads them."""
        record = getattr(self.base, "record_features", None)
        if record is not None:
            record(indices, features)

    @torch.no_grad()
    def merge(self, accelerator) -> None:
        """Per instance, the entry of the rank that saw it last (a collective call: every rank must make it). Each
        rank's clock counts the instances it learned from; with equal shards they advance alike."""
        base_merge = getattr(self.base, "merge", None)
        if base_merge is not None:
            base_merge(accelerator)
        if accelerator.num_processes > 1:
            if self.track_decline:  # with the clocks as they are, before they are merged
                self.last_decline.copy_(latest_across_ranks(accelerator, self.last_decline, self.last_clock)[0])
            log_losses, clocks = latest_across_ranks(accelerator, self.last_log_loss, self.last_clock)
            self.last_log_loss.copy_(log_losses)
            self.last_clock.copy_(clocks)
