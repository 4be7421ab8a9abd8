"""`decline`: learnability rather than loss, as Dynamic Sentence Sampling (Wang et al., 2018)."""

from .base import LabelRule, above_median


class DeclineLabel(LabelRule):
    """The loss fell more since the instance's previous visit than the batch's median fall: a learned or a
    mislabelled instance stops declining. Instances seen for the first time carry no label."""

    name = "decline"
    reads_memory = True

    def check(self, assistant):
        if not hasattr(assistant, "declines"):
            raise ValueError(
                "`label='decline'` needs an Assistant that remembers each instance's losses: wrap it in "
                "`WithLossMemory(assistant, track_decline=True)` (the trainer does so with "
                "`autoassist_assistant_memory=True`)."
            )

    def label(self, indices, losses, assistant):
        declines, seen = assistant.declines(indices, losses)
        declines = declines[seen]
        return indices[seen], above_median(declines) if len(declines) else declines
