"""L2-regularised linear SVM by SGD, SGD with importance sampling, and AutoAssist-style shrinking.

    F(w) = lambda / 2 * ||w||^2 + 1/n * sum_i max(0, 1 - y_i <w, x_i>)

is lambda-strongly convex. All three methods take the step size eta_t = 2 / (lambda (t + t0)) and report the
weighted average w_bar_t = sum_s s w_s / sum_s s, which converges at O(1/t) for strongly convex problems
(Lacoste-Julien, Schmidt & Bach 2012). An instance whose margin is at least 1 has a zero hinge gradient: its
stochastic gradient is just lambda w, which costs nothing to apply (w is kept as a scale times a vector). That is
what shrinking exploits: an Assistant predicts, without computing <w, x_i>, which instances have a zero hinge
gradient, and those are skipped (only the regulariser step is applied) with the paper's base probability floor.

Counted per method: gradient evaluations (an inner product with x_i, O(d), the unit of work), Assistant
evaluations (O(cheap features)), and wall-clock.
"""

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# the vision example's IDX reader, rather than a second copy
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "vision"))
from run_image_classification import read_idx  # noqa: E402

# ---- data ---------------------------------------------------------------------------------------------------------


@dataclass
class Task:
    """A binary problem: `x` (n, d) with a constant feature for the bias, `y` in {-1, +1}, cheap features `cheap`
    (n, k) the Assistant may read, and `labels` (n,) the original class of each instance (for a per-label bias)."""

    name: str
    x: np.ndarray
    y: np.ndarray
    cheap: np.ndarray
    labels: np.ndarray
    known_optimum: np.ndarray | None = None


def pooled(images: np.ndarray, size: int = 7) -> np.ndarray:
    """(n, 28, 28) -> (n, size*size) block means: the Assistant's cheap view of an image."""
    n, h, w = images.shape
    return images.reshape(n, size, h // size, size, w // size).mean(axis=(2, 4)).reshape(n, -1)


def image_task(data_dir: Path, positive: list[int], negative: list[int] | None, name: str, limit: int | None = None):
    """Classes `positive` vs `negative` (None: every other class) of an MNIST-style training set.

    Pixels are scaled to [0, 1] (the standard scaling for these sets), a constant 1 is appended as the bias, and
    everything is divided by the mean instance norm, so step sizes do not depend on the image size."""
    files = [data_dir / "train-images-idx3-ubyte.gz", data_dir / "train-labels-idx1-ubyte.gz"]
    for path in files:
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is missing. --data_dir must hold mnist/ and fashion-mnist/ folders with the IDX training "
                f"files {[p.name for p in files]} (e.g. ../shared/data)."
            )
    images = read_idx(str(files[0]))
    labels = read_idx(str(files[1])).astype(np.int64)
    mask = np.isin(labels, positive) | (np.ones_like(labels, bool) if negative is None else np.isin(labels, negative))
    images, labels = images[mask], labels[mask]
    if limit is not None:
        keep = np.random.default_rng(0).permutation(len(labels))[:limit]
        images, labels = images[keep], labels[keep]
    x = np.hstack([images.reshape(len(images), -1) / 255.0, np.ones((len(images), 1))])
    x /= np.linalg.norm(x, axis=1).mean()  # one global scale: mean norm 1, the spread of norms kept for sampling
    y = np.where(np.isin(labels, positive), 1.0, -1.0)
    cheap = pooled(images / 255.0)
    cheap = (cheap - cheap.mean(0)) / (cheap.std(0) + 1e-6)
    return Task(name, x, y, cheap, labels)


def synthetic_task(n_pairs: int = 500, dim: int = 20, lam: float = 0.01, seed: int = 0) -> Task:
    """Instances on a line through the origin plus noise in mirrored pairs: the optimum is known exactly.

    x = y a u + z, with u a unit vector, a > 0, and z orthogonal to u appearing as +z and -z with the same (y, a).
    Mirroring the noise directions maps the data set onto itself, so the unique optimum has no component along them:
    w* = t* u, where t* minimises the one-dimensional lambda/2 t^2 + mean(max(0, 1 - t a)).
    """
    rng = np.random.default_rng(seed)
    u = np.zeros(dim)
    u[0] = 1.0
    a = rng.uniform(0.2, 3.0, n_pairs)
    y = rng.choice([-1.0, 1.0], n_pairs)
    z = rng.normal(size=(n_pairs, dim))
    z[:, 0] = 0.0
    x = np.vstack([y[:, None] * a[:, None] * u + z, y[:, None] * a[:, None] * u - z])
    y, a = np.concatenate([y, y]), np.concatenate([a, a])
    t_star = minimise_line(a, lam)
    cheap = np.abs(x[:, :3])  # a cheap, imperfect view
    return Task("synthetic", x, y, cheap, (y > 0).astype(np.int64), known_optimum=t_star * u)


def minimise_line(a: np.ndarray, lam: float) -> float:
    """argmin_t lambda/2 t^2 + mean(max(0, 1 - t a)) for a > 0: piecewise quadratic, so check every piece."""
    breakpoints = np.sort(1.0 / a)
    candidates = [0.0, *breakpoints]
    for lo, hi in zip([0.0, *breakpoints], [*breakpoints, np.inf]):
        active = a[1.0 / a > lo + 1e-15]  # instances whose hinge is on for t in (lo, hi)
        stationary = active.sum() / (len(a) * lam)
        if lo <= stationary <= hi:
            candidates.append(stationary)
    values = [lam / 2 * t * t + np.maximum(0.0, 1.0 - t * a).mean() for t in candidates]
    return float(candidates[int(np.argmin(values))])


# ---- objective ----------------------------------------------------------------------------------------------------


def objective(w: np.ndarray, x: np.ndarray, y: np.ndarray, lam: float) -> float:
    return float(lam / 2 * w @ w + np.maximum(0.0, 1.0 - y * (x @ w)).mean())


def subgradient(w: np.ndarray, x: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    """A subgradient of F (the hinge's is taken as 0 at the kink)."""
    active = y * (x @ w) < 1.0
    return lam * w - (y[active, None] * x[active]).sum(0) / len(y)


def reference_optimum(task: Task, lam: float) -> tuple[np.ndarray, float]:
    """A tight optimum from liblinear's dual coordinate descent (scikit-learn's LinearSVC).

    `LinearSVC` minimises 1/2 ||w||^2 + C sum_i hinge_i, which is F / lambda with C = 1 / (lambda n)."""
    from sklearn.svm import LinearSVC

    svc = LinearSVC(C=1.0 / (lam * len(task.y)), loss="hinge", fit_intercept=False, tol=1e-10, max_iter=200_000)
    svc.fit(task.x, task.y)
    w = svc.coef_.ravel().astype(np.float64)
    return w, objective(w, task.x, task.y, lam)


# ---- the three methods --------------------------------------------------------------------------------------------


class ScaledAverage:
    """w = scale * v, with the weighted average sum_t t w_t / sum_t t kept lazily.

    A regulariser-only step multiplies `scale` (O(1)); the average accumulates sum_t t * scale_t as a number and is
    folded into the vector only when v changes, which happens only after a gradient evaluation (already O(d))."""

    def __init__(self, dim: int):
        self.v, self.scale = np.zeros(dim), 1.0
        self.avg_sum, self.pending, self.weight = np.zeros(dim), 0.0, 0.0

    def regularise(self, factor: float) -> None:
        self.scale *= factor
        if self.scale < 1e-9:  # renormalise before the scale underflows
            self._flush()
            self.v *= self.scale
            self.scale = 1.0

    def add(self, coef: float, x: np.ndarray) -> None:
        self._flush()
        self.v += (coef / self.scale) * x

    def margin(self, x: np.ndarray, y: float) -> float:
        return y * self.scale * float(self.v @ x)

    def record(self, t: int) -> None:
        self.pending += t * self.scale
        self.weight += t

    def _flush(self) -> None:
        if self.pending:
            self.avg_sum += self.pending * self.v
            self.pending = 0.0

    def average(self) -> np.ndarray:
        return (self.avg_sum + self.pending * self.v) / max(self.weight, 1e-300)


@dataclass
class Trace:
    """Where a run was at each checkpoint: iterations, gradient and Assistant evaluations, seconds, objective."""

    method: str
    iterations: list[int] = field(default_factory=list)
    gradient_evaluations: list[int] = field(default_factory=list)
    assistant_evaluations: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    objective: list[float] = field(default_factory=list)


class HistoryAssistant:
    """Predicts "hinge gradient is non-zero" from the instance's own last observed margin (O(1))."""

    cost = 1

    def __init__(self, task: Task):
        self.last_margin = np.full(len(task.y), -np.inf)  # never seen: predicted informative

    def score(self, i: int) -> float:
        return 1.0 if self.last_margin[i] < 1.0 else 0.0

    def update(self, i: int, margin: float) -> None:
        self.last_margin[i] = margin


class PooledPixelAssistant:
    """The library's image Assistant in numpy: logistic regression on pooled pixels plus a bias per label."""

    def __init__(self, task: Task, lr: float = 0.05):
        self.features, self.labels = task.cheap, task.labels
        self.w, self.b = np.zeros(task.cheap.shape[1]), np.zeros(int(task.labels.max()) + 1)
        self.lr = lr
        self.cost = task.cheap.shape[1]

    def score(self, i: int) -> float:
        logit = min(max(float(self.features[i] @ self.w + self.b[self.labels[i]]), -30.0), 30.0)
        return 1.0 / (1.0 + math.exp(-logit))

    def update(self, i: int, margin: float) -> None:
        error = self.score(i) - (1.0 if margin < 1.0 else 0.0)
        self.w -= self.lr * error * self.features[i]
        self.b[self.labels[i]] -= self.lr * error


def checkpoints(total: int, count: int = 40) -> set[int]:
    return set(np.unique(np.geomspace(10, total, count).astype(int)).tolist())


def run(
    task: Task,
    method: str,
    lam: float,
    iterations: int,
    seed: int = 0,
    t0: int = 10,
    base_prob: float = 0.3,
    assistant: str = "history",
    reweight: bool = False,
    eval_points: int = 40,
) -> Trace:
    """One run of `method` in {"sgd", "is_sgd", "shrinking"} for `iterations` sampled instances.

    Every iteration applies the step size of its index t; "shrinking" evaluates the gradient only of the instances
    it accepts (probability max(base_prob, 1 - confidence), else the Assistant's score) and applies only the
    regulariser for the others, exactly their gradient when the Assistant is right. With `reweight` the hinge step
    of an accepted instance is divided by its acceptance probability, which makes the update unbiased even where the
    Assistant is wrong (the paper does not reweight).
    """
    rng = np.random.default_rng(seed)
    n, dim = task.x.shape
    x, y = task.x, task.y
    state = ScaledAverage(dim)
    trace = Trace(method)
    marks = checkpoints(iterations, eval_points)
    if method == "is_sgd":
        # Zhao & Zhang (2015): p_i proportional to a bound on ||grad f_i||, here sqrt(lambda) + ||x_i|| (w stays in the
        # ball of radius 1/sqrt(lambda) that holds the optimum), and the step reweighted by 1 / (n p_i)
        bound = math.sqrt(lam) + np.linalg.norm(x, axis=1)
        probs = bound / bound.sum()
        draws = iter(rng.choice(n, size=iterations, p=probs))
    else:
        draws = iter(rng.integers(0, n, size=iterations))
    helper = (HistoryAssistant(task) if assistant == "history" else PooledPixelAssistant(task)) if method == "shrinking" else None
    confidence_ema, confidence_updates = 0.0, 0
    grads = assistant_evals = 0
    seconds, start = 0.0, time.perf_counter()
    for t in range(1, iterations + 1):
        i = next(draws)
        eta = 2.0 / (lam * (t + t0))
        weight = 1.0 / (n * probs[i]) if method == "is_sgd" else 1.0
        evaluate, hinge_weight = True, weight
        if helper is not None:
            score = helper.score(i)
            assistant_evals += 1
            confidence = confidence_ema / (1 - 0.999**confidence_updates) if confidence_updates else 0.0
            q = max(base_prob, 1.0 - confidence)
            accept = q + (1.0 - q) * score
            evaluate = rng.random() < accept
            if reweight:
                hinge_weight = 1.0 / accept
        state.regularise(1.0 - eta * lam * weight)
        if evaluate:
            grads += 1
            margin = state.margin(x[i], y[i])
            if margin < 1.0:
                state.add(eta * hinge_weight * y[i], x[i])
            if helper is not None:
                correct = (score >= 0.5) == (margin < 1.0)
                confidence_ema = 0.999 * confidence_ema + 0.001 * correct
                confidence_updates += 1
                helper.update(i, margin)
        state.record(t)
        if t in marks:
            seconds += time.perf_counter() - start
            trace.iterations.append(t)
            trace.gradient_evaluations.append(grads)
            trace.assistant_evaluations.append(assistant_evals)
            trace.seconds.append(seconds)
            trace.objective.append(objective(state.average(), x, y, lam))
            start = time.perf_counter()
    return trace


def evaluations_to_reach(trace: Trace, target: float) -> int | None:
    """Gradient evaluations at the first checkpoint whose objective is at most `target`, or None."""
    for evals, value in zip(trace.gradient_evaluations, trace.objective):
        if value <= target:
            return evals
    return None


def fitted_slope(xs: list[float], gaps: list[float], from_fraction: float = 0.3) -> float:
    """Slope of log gap vs log k over the later checkpoints (the asymptotic rate)."""
    xs, gaps = np.asarray(xs, float), np.asarray(gaps, float)
    keep = (xs >= xs.max() ** from_fraction * xs.min() ** (1 - from_fraction)) & (gaps > 0)
    return float(np.polyfit(np.log(xs[keep]), np.log(gaps[keep]), 1)[0])
