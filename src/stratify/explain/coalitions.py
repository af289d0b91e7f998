"""Exact Shapley values: the value of every coalition, and the values from them.

The interventional Shapley value of covariate :math:`j` for patient :math:`x` is
a weighted sum of the coalition values
:math:`v_x(S) = \\frac{1}{m}\\sum_b f(x_S, b_{\\bar S})` over the ``m``
background patients :math:`b` (:func:`shapley_from_values`). Two ways to get the
values:

* :func:`predicted_values`, for any model: all hybrid patients
  :math:`(x_S, b_{\\bar S})` of many patients in one batch of predictions;
* :func:`causal_forest_values`, for a causal survival forest (plain, shrunk
  or locally linear): its estimate at a point is a function of the sums over
  trees of the statistics of the leaves the point falls in, so each tree is
  walked once per (patient, background patient) pair instead of once per
  hybrid. The two walk together until a split on a covariate where they
  differ; there the walk forks (coalitions holding the covariate follow the
  patient, the others the background patient), and each leaf reached carries
  a constraint on the coalitions (covariates that must be in, must be out,
  free) coded in base 3. One pass over the covariates at the end turns the
  :math:`3^p` constraint sums into the :math:`2^p` coalition sums. For the
  MIROCALS trial (5 covariates, 50 background patients) this is about ten
  times faster than predicting the 1,600 hybrids of each patient.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from threadpoolctl import threadpool_limits

from stratify.learners import local_linear
from stratify.learners.base import CATE_COLUMNS


def shapley_from_values(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Shapley values from the values of all coalitions.

    Parameters
    ----------
    values : numpy.ndarray of shape (n, 2^p, k)
        ``values[i, c]``: :math:`v_{x_i}(S)` for the coalition :math:`S` holding
        covariate ``j`` where bit ``j`` of ``c`` is set.

    Returns
    -------
    shap_values : numpy.ndarray of shape (n, p, k)
        :math:`\phi_j = \sum_{S \not\ni j} \frac{|S|!\,(p-|S|-1)!}{p!}
        (v(S \cup \{j\}) - v(S))`.
    base : numpy.ndarray of shape (n, k)
        :math:`v(\emptyset)`; ``base + shap_values.sum(axis=1)`` is
        :math:`v(\text{all})`, the model's output for the patient.
    """
    n, n_coalitions, k = values.shape
    p = n_coalitions.bit_length() - 1
    masks = coalition_masks(p)
    size = masks.sum(axis=1)
    weight = np.zeros(n_coalitions)
    full = size < p
    weight[full] = [math.factorial(s) * math.factorial(p - s - 1) for s in size[full]]
    weight /= math.factorial(p)
    out = np.empty((n, p, k))
    for j in range(p):
        without = np.flatnonzero(~masks[:, j])
        gain = values[:, without + 2**j] - values[:, without]
        out[:, j] = np.einsum("ick,c->ik", gain, weight[without])
    return out, values[:, 0].copy()


def coalition_masks(p: int) -> np.ndarray:
    """``(2^p, p)`` booleans: coalition ``c`` holds covariate ``j`` if bit ``j`` of ``c`` is set."""
    return (np.arange(2**p)[:, None] >> np.arange(p)) & 1 == 1


def predicted_values(
    predict, data: np.ndarray, background: np.ndarray, *, max_rows: int = 2**15
) -> np.ndarray:
    """Coalition values of any model, from its predictions at the hybrid patients.

    Parameters
    ----------
    predict : callable
        Maps an ``(r, p)`` array to ``(r, k)`` outputs.
    data : numpy.ndarray of shape (n, p)
        Patients to explain.
    background : numpy.ndarray of shape (m, p)
        Reference patients.
    max_rows : int
        Rows per call of ``predict`` (at least one patient's ``2^p m``): many
        patients' hybrids go in one call, so a model pays its per-call cost once
        per batch, not once per patient.

    Returns
    -------
    numpy.ndarray of shape (n, 2^p, k)
    """
    n, p = data.shape
    middle = coalition_masks(p)[1:-1]  # neither the empty nor the full coalition
    step = max(1, max_rows // max(1, len(middle) * len(background)))
    # One BLAS thread: a multi-threaded product over a large batch sums in another order
    # than in a worker process limited to one thread, and the values must not depend on
    # where they are computed (the same numbers with any execution backend).
    with threadpool_limits(limits=1, user_api="blas"):
        base = np.asarray(predict(background), dtype=float).mean(axis=0)
        values = np.empty((n, 2**p, base.size))
        values[:, 0] = base
        for start in range(0, n, step):
            x = data[start : start + step]
            v = values[start : start + step]
            v[:, -1] = predict(x)
            if len(middle):
                hybrid = np.where(
                    middle[None, :, None, :], x[:, None, None, :], background[None, None]
                )
                out = np.asarray(predict(hybrid.reshape(-1, p)), dtype=float)
                v[:, 1:-1] = out.reshape(len(x), len(middle), len(background), -1).mean(axis=2)
    return values


def causal_forest_values(learner, data: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Coalition values of a fitted :class:`~stratify.learners.CausalSurvivalForest`.

    The same numbers as :func:`predicted_values` of its ``predict_cate``
    (``cate_rmst``, ``cate_surv``), from one walk of each tree per pair of
    patient and background patient (module docstring).

    Parameters
    ----------
    learner : CausalSurvivalForest
        Fitted.
    data : numpy.ndarray of shape (n, p)
        Patients to explain, columns as the learner's covariates.
    background : numpy.ndarray of shape (m, p)
        Reference patients.

    Returns
    -------
    numpy.ndarray of shape (n, 2^p, 2)
    """
    n, p = data.shape
    data, background = np.asarray(data, float), np.asarray(background, float)
    x32, b32 = data.astype(np.float32), background.astype(np.float32)
    masks = coalition_masks(p)
    values = np.empty((n, 2**p, len(CATE_COLUMNS)))
    for k, name in enumerate(CATE_COLUMNS):
        forest = learner.forests_[name]
        lam = learner.ll_lambda_[name]
        live = forest.count > 0  # a leaf without estimating patients gives no estimate
        columns = [live.astype(float), forest.numerator, forest.denominator]
        if np.isfinite(lam):
            moments = learner.leaf_moments_[name]
            columns += list(moments.T)
            column = list(learner.feature_names_in_).index(learner.modifier)
            center, scale = learner.correction_center_, learner.correction_scale_
        stats = np.ascontiguousarray(np.where(live[:, None], np.column_stack(columns), 0.0))
        shrink, ate = learner.shrinkage_factor_[name], learner.average_effect_[name]
        sums = np.zeros((len(background), 3**p, stats.shape[1]))
        for i in range(n):
            sums[:] = 0.0
            _walk(
                x32[i], b32, forest.feature, forest.threshold, forest.left, forest.right,
                forest.roots, stats, 3 ** np.arange(p), sums,
            )  # fmt: skip
            by_coalition = _expand(sums, p)  # (m, 2^p, d)
            if np.isfinite(lam):
                z = np.where(masks[None, :, column], data[i, column], background[:, column, None])
                z = ((z - center) / scale)[..., None]
                tau = _corrected(by_coalition, z, float(lam))
            else:
                k_trees, num, den = by_coalition[..., 0], by_coalition[..., 1], by_coalition[..., 2]
                with np.errstate(divide="ignore", invalid="ignore"):
                    tau = np.where((k_trees > 0) & (den != 0), num / den, np.nan)
            values[i, :, k] = (ate + shrink * (tau - ate)).mean(axis=0)
    return values


def _expand(sums: np.ndarray, p: int) -> np.ndarray:
    """Constraint sums ``(m, 3^p, d)`` to coalition sums ``(m, 2^p, d)``.

    Digit ``j`` (base 3) of a constraint is 0 (covariate ``j`` free), 1 (must be
    in the coalition) or 2 (must be out); a coalition gathers every constraint
    it satisfies.
    """
    m, _, d = sums.shape
    # C order puts covariate p - 1 on the first axis, as bit p - 1 is the highest of a coalition
    g = sums.reshape(m, *([3] * p), d)
    for axis in range(1, p + 1):
        free, inside, outside = (np.take(g, s, axis=axis) for s in range(3))
        g = np.stack([free + outside, free + inside], axis=axis)
    return g.reshape(m, 2**p, d)


@numba.njit(cache=True, nogil=True)
def _walk(x, B, feature, threshold, left, right, roots, stats, pow3, out):  # pragma: no cover
    """Add each leaf's ``stats`` to ``out[b, constraint]`` for every tree and background ``b``."""
    n_nodes = feature.shape[0]
    stack_node = np.empty(n_nodes, np.int64)
    stack_code = np.empty(n_nodes, np.int64)
    for b in range(B.shape[0]):
        for t in range(roots.shape[0]):
            stack_node[0] = roots[t]
            stack_code[0] = 0
            top = 1
            while top > 0:
                top -= 1
                node = stack_node[top]
                code = stack_code[top]
                if left[node] < 0:
                    out[b, code, :] += stats[node]
                    continue
                j = feature[node]
                x_left = x[j] <= threshold[node]
                b_left = B[b, j] <= threshold[node]
                x_child = left[node] if x_left else right[node]
                if x_left == b_left:
                    stack_node[top] = x_child
                    stack_code[top] = code
                    top += 1
                    continue
                b_child = left[node] if b_left else right[node]
                state = (code // pow3[j]) % 3
                if state == 1:  # the coalitions of this branch hold covariate j: x's way
                    stack_node[top] = x_child
                    stack_code[top] = code
                    top += 1
                elif state == 2:  # they do not: b's way
                    stack_node[top] = b_child
                    stack_code[top] = code
                    top += 1
                else:  # fork
                    stack_node[top] = x_child
                    stack_code[top] = code + pow3[j]
                    stack_node[top + 1] = b_child
                    stack_code[top + 1] = code + 2 * pow3[j]
                    top += 2


@numba.njit(cache=True, nogil=True)
def _corrected(sums, z, lam):  # pragma: no cover - compiled
    """Locally linear estimates from coalition sums ``(m, c, 3 + moments)`` at ``z (m, c, q)``."""
    m, c, _ = sums.shape
    q = z.shape[2]
    tau = np.empty((m, c))
    for b in range(m):
        for s in range(c):
            k = sums[b, s, 0]
            if k == 0 or sums[b, s, 2] == 0.0:
                tau[b, s] = np.nan
                continue
            M, v = local_linear._system(
                sums[b, s, 1] / k, sums[b, s, 2] / k, sums[b, s, 3:] / k, z[b, s], lam, q
            )
            if q == 1:  # Cramer's rule: a LAPACK call per 2 x 2 system costs more than it
                tau[b, s] = (v[0] * M[1, 1] - M[0, 1] * v[1]) / (M[0, 0] * M[1, 1] - M[0, 1] ** 2)
            else:
                tau[b, s] = np.linalg.solve(M, v)[0]
    return tau


__all__ = [
    "causal_forest_values",
    "coalition_masks",
    "predicted_values",
    "shapley_from_values",
]
