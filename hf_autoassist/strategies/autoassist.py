"""`autoassist`: the paper's shrinking rule, driven by a learned Assistant that trains in the background."""

import torch

from ..assistants import Assistant, AssistantWorker, WithLossMemory, build_assistant, resolve_assistant_name
from ..assistants.labels import build_label_rule
from ..assistants.worker import check_worker_options
from ..selection import (
    acceptance_probability, check_base_prob, inverse_probability_weights, sample_keep_mask, scaled_to_target,
)  # fmt: skip
from .base import Selection, SelectionStrategy


class AutoAssistSelection(SelectionStrategy):
    """Keeps each candidate with `q + (1 - q) * s` ([`acceptance_probability`]), `s` the Assistant's score.

    Args (the flat option each comes from in brackets; `from_args` reads them):
        base_prob (`float`, defaults to `0.3`): floor on every acceptance probability, in (0, 1]
            (`autoassist_base_prob`).
        target_keep (`float`, *optional*): scale the probabilities to keep this fraction of each epoch on average, in
            (0, 1] (`autoassist_target_keep`).
        reweight (`bool`, defaults to `False`): scale each kept instance's loss by `1 / p` (`autoassist_reweight`).
        implausible_keep_prob (`float`, *optional*): keep an instance whose label the irreducible-loss models find
            less likely than chance with this probability instead, in [0, 1] (`autoassist_implausible_keep_prob`).
        assistant (`str`, defaults to `"auto"`), pool_size (`int`, defaults to 7), token_dim (`int`, defaults to 1),
            memory (`bool`, defaults to `True`): which Assistant is built and how (`autoassist_assistant`,
            `autoassist_pool_size`, `autoassist_assistant_dim`, `autoassist_assistant_memory`).
        label (`str`, defaults to `"batch_median"`), loss_momentum (`float`): what it learns to predict
            (`autoassist_label`, `autoassist_loss_momentum`; `labels/`).
        lr, queue_size, cpu_share, confidence: how it learns ([`AssistantWorker`]; `autoassist_assistant_lr`,
            `autoassist_queue_size`, `autoassist_assistant_cpu_share`, `autoassist_confidence`).
        synchronous (`bool`, *optional*): where it learns: inside the step, in a thread, or unset: inside the step
            when the Boss trains on CPU (`autoassist_synchronous`).
    """

    name = "autoassist"
    observes_losses = True

    def __init__(
        self, base_prob: float = 0.3, target_keep: float | None = None, reweight: bool = False,
        implausible_keep_prob: float | None = None, assistant: str = "auto", pool_size: int = 7, token_dim: int = 1,
        memory: bool = True, label: str = "batch_median", loss_momentum: float = 0.99, lr: float = 0.05,
        queue_size: int = 512, cpu_share: float | None = 0.1, confidence: str = "skill", synchronous: bool | None = None,
    ):  # fmt: skip
        check_base_prob(base_prob)
        if target_keep is not None and not 0.0 < target_keep <= 1.0:
            raise ValueError(
                f"`autoassist_target_keep` must be in (0, 1], got {target_keep}: it is the fraction of each epoch to "
                "keep. Leave it unset to let the rule decide how much to keep."
            )
        if implausible_keep_prob is not None and not 0.0 <= implausible_keep_prob <= 1.0:
            raise ValueError(
                f"`autoassist_implausible_keep_prob` must be in [0, 1], got {implausible_keep_prob}: the chance to "
                "keep an instance whose label looks wrong (0 drops it). Leave it unset to keep the rule's."
            )
        if pool_size < 1:
            raise ValueError(f"`autoassist_pool_size` must be >= 1, got {pool_size}.")
        if token_dim < 1:
            raise ValueError(f"`autoassist_assistant_dim` must be >= 1, got {token_dim}.")
        self.label_rule = build_label_rule(label, loss_momentum)
        if self.label_rule.reads_memory and not memory:
            raise ValueError(
                f"`autoassist_label={label!r}` learns from each instance's past losses, which the loss memory keeps: "
                "set `autoassist_assistant_memory=True`."
            )
        check_worker_options(lr, queue_size, cpu_share, confidence)
        self.base_prob, self.target_keep, self.reweights = base_prob, target_keep, reweight
        self.implausible_keep_prob = implausible_keep_prob
        self.assistant_name, self.pool_size, self.token_dim, self.memory = assistant, pool_size, token_dim, memory
        self.worker_options = dict(lr=lr, queue_size=queue_size, cpu_share=cpu_share, confidence=confidence)
        self.synchronous = synchronous
        self.assistant: Assistant | None = None
        self.worker: AssistantWorker | None = None
        # `(N,)` instances kept with `implausible_keep_prob` whatever the Assistant says
        self.implausible = None

    @classmethod
    def from_args(cls, args, **overrides):
        """The options `args` holds; `overrides` replace some (a stream's Assistant has no loss memory)."""
        options = dict(
            base_prob=cls.base_prob_from(args), target_keep=args.autoassist_target_keep,
            reweight=args.autoassist_reweight, implausible_keep_prob=args.autoassist_implausible_keep_prob,
            assistant=args.autoassist_assistant, pool_size=args.autoassist_pool_size,
            token_dim=args.autoassist_assistant_dim, memory=args.autoassist_assistant_memory,
            label=args.autoassist_label, loss_momentum=args.autoassist_loss_momentum, lr=args.autoassist_assistant_lr,
            queue_size=args.autoassist_queue_size, cpu_share=args.autoassist_assistant_cpu_share,
            confidence=args.autoassist_confidence, synchronous=args.autoassist_synchronous,
        )  # fmt: skip
        return cls(**{**options, **overrides})

    def prepare(self, dataset, assistant=None, irreducible=None, device=None):
        """`irreducible`: the `IrreducibleLosses`, for the labels that read them and `implausible_keep_prob`;
        `device`: where the Boss trains (the Assistant learns inside the step on CPU unless `synchronous` says)."""
        if self.implausible_keep_prob is not None:
            self.implausible = None if irreducible is None else irreducible.implausible()
            if self.implausible is None:
                raise ValueError(
                    "`autoassist_implausible_keep_prob` compares each instance's irreducible loss with log(number of "
                    "classes), which needs a classification set (one class id per instance, `logits` of shape "
                    "(batch, classes)); this training set's labels are sequences. Unset it; `autoassist_label="
                    "'learnable'` reads the irreducible losses of sequences in ranks."
                )
        if assistant is None:
            if not self.memory and resolve_assistant_name(self.assistant_name, dataset) == "loss_memory":
                raise ValueError(
                    "`autoassist_assistant='loss_memory'` reads neither images nor token ids, only each instance's "
                    "last losses, which the loss memory keeps: set `autoassist_assistant_memory=True`, choose "
                    "another `autoassist_assistant`, or pass `assistant=` (an `hf_autoassist.assistants.Assistant`) "
                    "to the trainer."
                )
            assistant = build_assistant(self.assistant_name, dataset, pool_size=self.pool_size, token_dim=self.token_dim)
            if self.memory:
                assistant = WithLossMemory(
                    assistant,
                    track_decline=self.label_rule.name == "decline",
                    irreducible=None if irreducible is None else irreducible.losses,
                    learnable=self.label_rule.name == "learnable",
                )
        if assistant.num_instances != len(dataset):
            raise ValueError(
                f"The Assistant was built for {assistant.num_instances} instances but the training set has "
                f"{len(dataset)}. Build it from the same `train_dataset` you pass to the trainer."
            )
        self.assistant = assistant
        synchronous = self.synchronous
        if synchronous is None:  # on CPU a thread beside the Boss's own stalls them
            synchronous = device is None or torch.device(device).type == "cpu"
        self.worker = AssistantWorker(
            assistant, label=self.label_rule, synchronous=synchronous, **self.worker_options
        )

    def synchronize(self, accelerator):
        merge = getattr(self.assistant, "merge", None)  # a memory Assistant; it does nothing with one process
        if merge is not None:
            with self.worker.lock:  # not while the thread updates the memory
                merge(accelerator)

    def select(self, candidates, selecting_epoch, generator):
        probs = acceptance_probability(self.worker.score(candidates), self.worker.confidence, self.base_prob)
        if self.target_keep is not None:  # a budget: the rule's order, the kept fraction asked for
            probs = scaled_to_target(probs, self.target_keep, self.base_prob)
        if self.implausible is not None:  # after the budget's floor: asked for, it may go below
            probs = torch.where(self.implausible[candidates], self.implausible_keep_prob, probs)
        keep = sample_keep_mask(probs, generator)
        return Selection(keep, inverse_probability_weights(probs) if self.reweights else None)

    def observe(self, indices, losses, step, features=None):
        if features is None:  # as a worker's `submit` written before features were recorded is called
            self.worker.submit(indices, losses)
        else:
            self.worker.submit(indices, losses, features)

    def state_dict(self):
        return {"worker": self.worker.state_dict()}

    def load_state_dict(self, state):
        if state.get("worker") is not None:
            self.worker.load_state_dict(state["worker"])

    def metrics(self):
        return self.worker.metrics()

    def close(self):
        if self.worker is not None:  # None when `prepare` failed
            self.worker.close()
