"""`autoassist`: the paper's shrinking rule, driven by a learned Assistant that trains in the background."""

import torch

from ..assistants import Assistant, AssistantWorker, WithLossMemory, build_assistant
from ..selection import acceptance_probability, inverse_probability_weights, sample_keep_mask, scaled_to_target
from .base import Selection, SelectionStrategy


class AutoAssistSelection(SelectionStrategy):
    """Keeps each candidate with `q + (1 - q) * s` ([`acceptance_probability`]), `s` the Assistant's score, scaled to
    keep `autoassist_target_keep` of each epoch on average when that is set; with `autoassist_implausible_keep_prob`
    an instance whose label looks wrong to the irreducible-loss models is kept with that probability instead; with
    `autoassist_reweight` the kept instances' losses are scaled by `1 / p`."""

    name = "autoassist"
    observes_losses = True

    def __init__(self, args):
        super().__init__(args)
        self.reweights = args.autoassist_reweight
        self.assistant: Assistant | None = None
        self.worker: AssistantWorker | None = None
        # `(N,)` instances kept with `autoassist_implausible_keep_prob` whatever the Assistant says
        self.implausible = None

    def prepare(self, dataset, assistant=None, irreducible=None):
        """`irreducible`: the `IrreducibleLosses`, for `autoassist_label="reducible"` / `"learnable"` and
        `autoassist_implausible_keep_prob`."""
        args = self.args
        if args.autoassist_implausible_keep_prob is not None:
            self.implausible = None if irreducible is None else irreducible.implausible()
            if self.implausible is None:
                raise ValueError(
                    "`autoassist_implausible_keep_prob` compares each instance's irreducible loss with log(number of "
                    "classes), which needs a classification set (one class id per instance, `logits` of shape "
                    "(batch, classes)); this training set's labels are sequences. Unset it; `autoassist_label="
                    "'learnable'` reads the irreducible losses of sequences in ranks."
                )
        if assistant is None:
            assistant = build_assistant(
                args.autoassist_assistant, dataset, pool_size=args.autoassist_pool_size, token_dim=args.autoassist_assistant_dim
            )
            if args.autoassist_assistant_memory:
                assistant = WithLossMemory(
                    assistant,
                    track_decline=args.autoassist_label == "decline",
                    irreducible=None if irreducible is None else irreducible.losses,
                    learnable=args.autoassist_label == "learnable",
                )
        if assistant.num_instances != len(dataset):
            raise ValueError(
                f"The Assistant was built for {assistant.num_instances} instances but the training set has "
                f"{len(dataset)}. Build it from the same `train_dataset` you pass to the trainer."
            )
        self.assistant = assistant
        self.worker = AssistantWorker(
            assistant,
            lr=args.autoassist_assistant_lr,
            queue_size=args.autoassist_queue_size,
            loss_momentum=args.autoassist_loss_momentum,
            synchronous=args.assistant_trains_in_step,
            label=args.autoassist_label,
            confidence=args.autoassist_confidence,
            cpu_share=args.autoassist_assistant_cpu_share,
        )

    def synchronize(self, accelerator):
        merge = getattr(self.assistant, "merge", None)  # a memory Assistant; it does nothing with one process
        if merge is not None:
            with self.worker.lock:  # not while the thread updates the memory
                merge(accelerator)

    def select(self, candidates, selecting_epoch, generator):
        probs = acceptance_probability(self.worker.score(candidates), self.worker.confidence, self.args.autoassist_base_prob)
        if self.args.autoassist_target_keep is not None:  # a budget: the rule's order, the kept fraction asked for
            probs = scaled_to_target(probs, self.args.autoassist_target_keep, self.args.autoassist_base_prob)
        if self.implausible is not None:  # after the budget's floor: asked for, it may go below
            probs = torch.where(self.implausible[candidates], self.args.autoassist_implausible_keep_prob, probs)
        keep = sample_keep_mask(probs, generator)
        return Selection(keep, inverse_probability_weights(probs) if self.reweights else None)

    def observe(self, indices, losses, step):
        self.worker.submit(indices, losses)

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
