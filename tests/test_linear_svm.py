"""The linear-SVM study's building blocks and its two claims, on small fixed-seed problems."""

import sys

import numpy as np
import pytest

from conftest import DATA_DIR, REPO

sys.path.insert(0, str(REPO / "examples/linear_svm"))
import svm  # noqa: E402


def test_objective_and_subgradient_match_a_hand_computation():
    x = np.array([[1.0, 0.0], [0.0, 2.0]])
    y = np.array([1.0, -1.0])
    w = np.array([0.5, 0.25])
    lam = 0.1
    # margins: 0.5 (hinge 0.5) and -0.5 (hinge 1.5); regulariser 0.05 * (0.25 + 0.0625)
    assert svm.objective(w, x, y, lam) == pytest.approx(0.05 * 0.3125 + (0.5 + 1.5) / 2)
    expected = lam * w - (np.array([1.0, 0.0]) * 1.0 + np.array([0.0, 2.0]) * -1.0) / 2
    np.testing.assert_allclose(svm.subgradient(w, x, y, lam), expected)


def test_line_minimiser_matches_a_fine_grid():
    a = np.array([0.3, 0.9, 1.7, 2.5])
    t = svm.minimise_line(a, lam=0.05)
    grid = np.linspace(0, 10, 200_001)
    values = 0.025 * grid**2 + np.maximum(0, 1 - grid[:, None] * a).mean(1)
    assert t == pytest.approx(grid[values.argmin()], abs=1e-4)


def test_reference_solver_finds_the_known_optimum_of_the_synthetic_task():
    lam = 0.01
    task = svm.synthetic_task(lam=lam)
    w, value = svm.reference_optimum(task, lam)
    np.testing.assert_allclose(w, task.known_optimum, atol=1e-6)
    assert value == pytest.approx(svm.objective(task.known_optimum, task.x, task.y, lam), rel=1e-9)
    # and it is a minimum: no random direction improves it
    rng = np.random.default_rng(0)
    for _ in range(20):
        assert svm.objective(w + 1e-3 * rng.normal(size=w.shape), task.x, task.y, lam) >= value


def test_lazy_weighted_average_equals_the_explicit_one():
    rng = np.random.default_rng(0)
    state, w, total, weight = svm.ScaledAverage(5), np.zeros(5), np.zeros(5), 0.0
    for t in range(1, 300):
        factor = 1 - 2 / (t + 3)
        state.regularise(factor)
        w *= factor
        if rng.random() < 0.4:
            x = rng.normal(size=5)
            state.add(0.1, x)
            w += 0.1 * x
        state.record(t)
        total, weight = total + t * w, weight + t
        np.testing.assert_allclose(state.scale * state.v, w, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(state.average(), total / weight, rtol=1e-9)


@pytest.fixture(scope="module")
def pullover_vs_coat():
    task = svm.image_task(DATA_DIR / "fashion-mnist", [2], [4], "pullover vs coat", limit=3000)
    _, optimum = svm.reference_optimum(task, 1e-3)
    return task, optimum


def test_shrinking_reaches_the_gap_with_fewer_gradient_evaluations_than_sgd(pullover_vs_coat):
    task, optimum = pullover_vs_coat
    target = optimum + 1e-2
    sgd = svm.run(task, "sgd", lam=1e-3, iterations=30_000, seed=0)
    shrinking = svm.run(task, "shrinking", lam=1e-3, iterations=30_000, seed=0, assistant="history")
    sgd_evals, shrink_evals = svm.evaluations_to_reach(sgd, target), svm.evaluations_to_reach(shrinking, target)
    assert sgd_evals is not None and shrink_evals is not None
    assert shrink_evals < sgd_evals
    # and it skipped work: fewer gradient evaluations than sampled instances
    assert shrinking.gradient_evaluations[-1] < 0.9 * shrinking.iterations[-1]


def test_sgd_converges_at_rate_one_over_k(pullover_vs_coat):
    task, optimum = pullover_vs_coat
    trace = svm.run(task, "sgd", lam=1e-3, iterations=60_000, seed=0)
    slope = svm.fitted_slope(trace.iterations, np.array(trace.objective) - optimum)
    assert -1.4 < slope < -0.8, slope


def test_missing_idx_files_name_the_data_dir_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"train-images-idx3-ubyte.gz is missing. --data_dir must hold mnist/"):
        svm.image_task(tmp_path / "fashion-mnist", [2], [4], "pullover vs coat")
