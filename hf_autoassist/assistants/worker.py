"""`AssistantWorker`: trains an Assistant online from the Boss's per-instance losses, off the Boss's critical path."""

import collections
import threading
import time

import torch

from .base import Assistant
from .labels import LabelRule, build_label_rule


def check_worker_options(lr: float, queue_size: int, cpu_share: float | None, confidence: str) -> None:
    """How the Assistant learns: each option checked, named as the trainer's config names it."""
    if lr <= 0:
        raise ValueError(f"`autoassist_assistant_lr` must be > 0, got {lr}.")
    if queue_size < 1:
        raise ValueError(f"`autoassist_queue_size` must be >= 1, got {queue_size}.")
    if cpu_share is not None and not 0.0 < cpu_share <= 1.0:
        raise ValueError(
            f"`autoassist_assistant_cpu_share` must be in (0, 1], got {cpu_share}; set it to None for no bound."
        )
    if confidence not in ("accuracy", "skill"):
        raise ValueError(f"`autoassist_confidence` must be 'accuracy' or 'skill', got {confidence!r}.")


class AssistantWorker:
    """Owns an [`Assistant`], a bounded queue of `(indices, losses)` and a background thread.

    - `submit` is all the Boss calls per step: an O(1) append. When the queue is full the oldest batch is dropped
      and counted in `dropped`, so the Boss never waits.
    - Each batch is labelled by `label`, a rule of `labels/` (one module each: `running_mean`, the paper's, with
      `loss_momentum`; `batch_median`; `decline`; `reducible`; `learnable`) or a `LabelRule` of your own. The label
      is predicted before the update to keep a running accuracy, then used for one SGD step.
    - `confidence` is that running accuracy (`confidence="accuracy"`, the paper's) or its skill over always
      answering the majority label, `(accuracy - majority) / (1 - majority)` clipped at 0 (`confidence="skill"`):
      with unbalanced labels an Assistant that learned nothing already scores the majority rate.
    - `cpu_share` bounds the thread's CPU time to that share of the wall-clock time since it started: past it, the
      thread sleeps (holding neither the GIL nor a core) and batches wait in the queue, the oldest dropped when it
      is full. The Boss trains on the same cores; `metrics()` reports the share taken and the time slept.
    - An exception in the thread is kept and re-raised in the training process by `raise_if_failed`.
    - `synchronous=True` trains inside `submit` instead: bit-reproducible, for debugging and tests.
    """

    def __init__(
        self,
        assistant: Assistant,
        lr: float = 0.05,
        queue_size: int = 512,
        loss_momentum: float = 0.99,
        accuracy_momentum: float = 0.99,
        synchronous: bool = False,
        label: str | LabelRule = "running_mean",
        confidence: str = "accuracy",
        cpu_share: float | None = None,
    ):
        self.label_rule = label if isinstance(label, LabelRule) else build_label_rule(label, loss_momentum)
        self.label_rule.check(assistant)
        check_worker_options(lr, queue_size, cpu_share, confidence)
        self.label, self.confidence_kind = self.label_rule.name, confidence
        self.assistant = assistant
        self.lr = lr  # of plain SGD, each step taken by the Assistant's `learn`
        self.accuracy_momentum = accuracy_momentum
        self.synchronous = synchronous
        self.cpu_share = cpu_share
        self.queue: collections.deque = collections.deque(maxlen=queue_size)
        self.lock = threading.Lock()  # guards the Assistant's parameters and the statistics
        self.wakeup = threading.Condition()
        self._accuracy_ema = 0.0
        self._positive_ema = 0.0  # share of "still informative" labels
        self._accuracy_updates = 0
        self.seen = 0  # instances submitted by the Boss
        self.trained = 0  # instances the Assistant learned from
        self.dropped = 0  # instances dropped from a full queue
        self.train_seconds = 0.0  # time the thread spent learning
        self.train_cpu_seconds = 0.0  # CPU time the thread took for it: its share of the cores the Boss trains on
        self.score_seconds = 0.0  # time the trainer spent scoring epochs
        self.throttled_seconds = 0.0  # time the thread slept to keep within `cpu_share`
        # the share is counted over this worker's life: from its start, or from the checkpoint it resumed from
        self._started, self._cpu_before = time.perf_counter(), 0.0
        self.error: BaseException | None = None
        self._idle = True
        self._stop = False
        self._thread: threading.Thread | None = None
        if not synchronous:
            self._thread = threading.Thread(target=self._loop, name="autoassist-assistant", daemon=True)
            self._thread.start()

    # ---- what the Boss calls -------------------------------------------------------------------------------------
    def submit(self, indices: torch.Tensor, losses: torch.Tensor, features: torch.Tensor | None = None) -> None:
        """Hands one batch of Boss losses, `(B,)` each, to the Assistant, with the Boss's features of the batch,
        `(B, F)`, for an Assistant that reads them (`record_features`)."""
        self.raise_if_failed()
        indices, losses = indices.detach().long().cpu(), losses.detach().float().cpu()
        self.seen += len(indices)
        if self.synchronous:
            self._train(indices, losses, features)
            return
        with self.wakeup:
            if len(self.queue) == self.queue.maxlen:
                self.dropped += len(self.queue[0][0])
            self.queue.append((indices, losses, features))
            self._idle = False
            self.wakeup.notify()

    def score(self, indices: torch.Tensor) -> torch.Tensor:
        """The Assistant's probabilities for `indices`, under the lock so that no SGD step is half applied."""
        self.raise_if_failed()
        start = time.perf_counter()
        with self.lock:
            scores = self.assistant.score(indices)
        self.score_seconds += time.perf_counter() - start
        return scores

    def _debiased(self, ema: float) -> float:
        return ema / (1.0 - self.accuracy_momentum**self._accuracy_updates)

    @property
    def accuracy(self) -> float:
        """Running accuracy of the Assistant's predictions made before it learned from them (bias-corrected EMA)."""
        return 0.0 if self._accuracy_updates == 0 else self._debiased(self._accuracy_ema)

    @property
    def positive_rate(self) -> float:
        """Running share of instances labelled "still informative"."""
        return 0.0 if self._accuracy_updates == 0 else self._debiased(self._positive_ema)

    @property
    def skill(self) -> float:
        """Accuracy beyond always answering the majority label, as a fraction of what is left to gain; 0 or more."""
        majority = max(self.positive_rate, 1.0 - self.positive_rate)
        if self._accuracy_updates == 0 or majority >= 1.0:
            return 0.0
        return max(0.0, (self.accuracy - majority) / (1.0 - majority))

    @property
    def confidence(self) -> float:
        """What the shrinking rule trusts the Assistant with: its `accuracy` or its `skill`."""
        return self.skill if self.confidence_kind == "skill" else self.accuracy

    def raise_if_failed(self) -> None:
        if self.error is not None:
            raise RuntimeError(f"The AutoAssist Assistant failed in its background thread: {self.error!r}") from self.error

    def flush(self, timeout: float = 60.0) -> None:
        """Waits until every queued batch has been learned from. Never called by the Trainer; for tests and tools."""
        deadline = time.monotonic() + timeout
        with self.wakeup:
            while not self._idle and self.error is None:
                if not self.wakeup.wait(timeout=max(0.0, deadline - time.monotonic())):
                    raise TimeoutError(f"The Assistant did not drain its queue within {timeout} s.")
        self.raise_if_failed()

    def close(self) -> None:
        """Stops the thread once it has learned from what is queued; `metrics` and `score` still work after."""
        with self.wakeup:
            self._stop = True
            self.wakeup.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=10)

    @property
    def seconds(self) -> float:
        """Assistant cost: learning plus scoring, in seconds of wall-clock (learning runs beside the Boss)."""
        return self.train_seconds + self.score_seconds

    def metrics(self) -> dict[str, float]:
        return {
            "autoassist/assistant_accuracy": round(self.accuracy, 4),
            "autoassist/assistant_skill": round(self.skill, 4),
            "autoassist/positive_rate": round(self.positive_rate, 4),
            "autoassist/instances_seen": self.seen,
            "autoassist/instances_trained": self.trained,
            "autoassist/queue_dropped": self.dropped,
            "autoassist/assistant_seconds": round(self.seconds, 3),
            "autoassist/assistant_cpu_seconds": round(self.train_cpu_seconds, 3),
            "autoassist/assistant_cpu_share": round(self.cpu_share_taken, 4),
            "autoassist/assistant_throttled_seconds": round(self.throttled_seconds, 3),
        }

    @property
    def cpu_share_taken(self) -> float:
        """The thread's CPU time over the wall-clock time since the worker started."""
        return (self.train_cpu_seconds - self._cpu_before) / max(time.perf_counter() - self._started, 1e-9)

    # ---- checkpoints ----------------------------------------------------------------------------------------------
    _STATISTICS = (
        "_accuracy_ema", "_positive_ema", "_accuracy_updates", "seen", "trained", "dropped",
        "train_seconds", "score_seconds", "train_cpu_seconds", "throttled_seconds",
    )  # fmt: skip

    def state_dict(self) -> dict:
        """The Assistant's weights and its statistics, as they are now (queued batches not included:
        in the background mode the checkpoint holds what the Assistant had learned when it was written)."""
        with self.lock:
            return {
                "assistant": {k: v.clone() for k, v in self.assistant.state_dict().items()},
                **self.label_rule.state_dict(),
                **{name: getattr(self, name) for name in self._STATISTICS},
            }

    def load_state_dict(self, state: dict) -> None:
        with self.lock:
            self.assistant.load_state_dict(state["assistant"])
            self.label_rule.load_state_dict(state)
            for name in self._STATISTICS:
                setattr(self, name, state.get(name, 0.0))
            self._started, self._cpu_before = time.perf_counter(), self.train_cpu_seconds

    # ---- the background thread -----------------------------------------------------------------------------------
    def _loop(self) -> None:
        # one intra-op thread: the Assistant's tensors are tiny, and a second OpenMP team would compete with the
        # Boss for the cores (the setting is per thread, the Boss keeps its own)
        torch.set_num_threads(1)
        while True:
            with self.wakeup:
                while not self.queue and not self._stop:
                    self._idle = True
                    self.wakeup.notify_all()
                    self.wakeup.wait()
                if not self.queue:  # stopped, and everything queued has been learned from
                    self._idle = True
                    self.wakeup.notify_all()
                    return
                indices, losses, features = self.queue.popleft()
            try:
                self._train(indices, losses, features)
            except BaseException as error:  # re-raised in the training process by raise_if_failed
                with self.wakeup:
                    self.error = error
                    self._idle = True
                    self.wakeup.notify_all()
                return
            self._keep_within_cpu_share()

    def _keep_within_cpu_share(self) -> None:
        """Sleeps until the thread's CPU time is back within `cpu_share` of the time since it started (at once
        when the worker is closing: training is over, the queue is drained at full speed)."""
        if self.cpu_share is None:
            return
        excess = (self.train_cpu_seconds - self._cpu_before) / self.cpu_share - (time.perf_counter() - self._started)
        if excess > 0:
            with self.wakeup:
                slept = time.perf_counter()
                self.wakeup.wait_for(lambda: self._stop, timeout=excess)
                self.throttled_seconds += time.perf_counter() - slept

    def _learn(self, indices: torch.Tensor, targets: torch.Tensor) -> None:
        """One SGD step on `indices` and their labels, predicted first to keep the running accuracy."""
        logits = self.assistant.learn(indices, targets, self.lr)
        accuracy = float(((logits > 0).float() == targets).float().mean())
        self._accuracy_ema = self.accuracy_momentum * self._accuracy_ema + (1 - self.accuracy_momentum) * accuracy
        positive = float(targets.mean())
        self._positive_ema = self.accuracy_momentum * self._positive_ema + (1 - self.accuracy_momentum) * positive
        self._accuracy_updates += 1
        self.trained += len(indices)

    def _train(self, indices: torch.Tensor, losses: torch.Tensor, features: torch.Tensor | None = None) -> None:
        start, start_cpu = time.perf_counter(), time.thread_time()
        with self.lock:
            labelled, targets = self.label_rule.label(indices, losses, self.assistant)
            if len(labelled):  # with `label="decline"`, a batch of first visits teaches nothing yet
                self._learn(labelled, targets)
            remember = getattr(self.assistant, "remember", None)
            if remember is not None:  # an Assistant with a loss memory: after the prediction it learned from
                remember(indices, losses)
            record = getattr(self.assistant, "record_features", None)
            if record is not None and features is not None:  # likewise the Boss's features
                record(indices, features)
        self.train_seconds += time.perf_counter() - start
        self.train_cpu_seconds += time.thread_time() - start_cpu
