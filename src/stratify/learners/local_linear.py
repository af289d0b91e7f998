r"""Local linear correction of an honest forest's estimates along chosen covariates.

grf corrects its regression and causal forests' estimates with a local linear
regression in the forest's own neighbourhood (Friedberg, Tibshirani, Athey &
Wager, "Local linear forests", *JCGS* 2020; grf's ``linear.correction.variables``
and ``ll.lambda``); its causal survival forest has no such option. This module
gives it one. At ``x``, with the forest weights :math:`\alpha_i(x)` (the mean
over trees of :math:`1\{i \in L_t(x)\} / |L_t(x)|` over each tree's estimating
patients) and standardised correction covariates :math:`z`, the estimate is the
intercept :math:`\theta` of the weighted ridge regression

.. math::

   \min_{\theta, \beta} \sum_i \alpha_i(x) \psi^{den}_i
   \big(\psi^{num}_i / \psi^{den}_i - \theta - (z_i - z(x))^\top \beta\big)^2
   + \lambda \Big(\sum_i \alpha_i(x) \psi^{den}_i\Big) \lVert \beta \rVert^2,

the forest's estimating equation with a local slope. With :math:`\lambda = \infty`
it is the forest's own estimate :math:`\sum \alpha \psi^{num} / \sum \alpha \psi^{den}`.
The normal equations need only the forest means of a few leaf moments
(:math:`\psi^{den}`, :math:`\psi^{den} z`, :math:`\psi^{den} z z^\top`,
:math:`\psi^{num}`, :math:`\psi^{num} z`), so no patient list is stored, and the
estimate is a smooth function of means over trees: its variance is grf's
little-bag variance of the linearised per-tree terms
:math:`e_1^\top M^{-1} (v_t - M_t b)` (the delta method, which for
:math:`\lambda = \infty` is grf's own variance of the forest).

:func:`choose_lambda` picks :math:`\lambda` by the out-of-bag doubly robust loss
:math:`\sum_i (\psi^{num}_i - \psi^{den}_i \hat\theta_{-i})^2 / \psi^{den}_i`,
keeping the plain forest unless a correction lowers it by more than one
standard error of the paired difference (the one-standard-error rule).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from stratify.learners import honest_trees
from stratify.learners.honest_trees import Forest, TreeOptions

#: Penalties tried by :func:`choose_lambda` (relative to the weight sum, on the
#: standardised covariates; larger is closer to the plain forest).
LAMBDA_GRID = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)


def moment_columns(numerator: np.ndarray, denominator: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Per-patient ``[den z, den z z^T (row-major), num z]``, shape ``(n, q + q^2 + q)``."""
    n, q = z.shape
    zz = (z[:, :, None] * z[:, None, :]).reshape(n, q * q)
    return np.hstack([denominator[:, None] * z, denominator[:, None] * zz, numerator[:, None] * z])


def leaf_means(
    forest: Forest,
    X: np.ndarray,
    values: np.ndarray,
    *,
    seed: int,
    sample_fraction: float,
    options: TreeOptions,
    n_jobs: int = 1,
) -> np.ndarray:
    """Means of ``values`` over each node's estimating patients (rows of the flat forest).

    The estimating patients of every tree are drawn again from the seed the forest
    was grown with (:func:`stratify.learners.honest_trees.grow_forest`), so this
    repopulates exactly the leaves whose ``numerator``/``denominator`` the forest holds.

    Parameters
    ----------
    forest : Forest
    X : numpy.ndarray of shape (n, p)
        The training covariates, in the order the forest was grown on.
    values : numpy.ndarray of shape (n, m)
    seed, sample_fraction, options
        As given to ``grow_forest``.
    n_jobs : int
        Threads.

    Returns
    -------
    numpy.ndarray of shape (n_nodes, m)
        Zero at nodes without estimating patients.
    """
    X32 = np.ascontiguousarray(X, dtype=np.float32)
    vals = np.ascontiguousarray(values, dtype=np.float64)
    n = X32.shape[0]
    group = forest.group_size
    n_groups = forest.n_trees // group
    sizes = honest_trees.subsample_sizes(n, group, sample_fraction, options)
    seeds = np.random.SeedSequence(seed).generate_state(n_groups).astype(np.int64)
    sums = np.zeros((len(forest.feature), vals.shape[1]))
    counts = np.zeros(len(forest.feature), np.int64)
    chunks = [np.arange(g, min(g + 64, n_groups)) for g in range(0, n_groups, 64)]

    def work(groups: np.ndarray) -> None:  # trees of distinct groups touch distinct rows
        _fill(
            X32, vals, forest.feature, forest.threshold, forest.left, forest.right, forest.roots,
            seeds, groups, *sizes, options.honesty, group, sums, counts,
        )  # fmt: skip

    if n_jobs == 1:
        for c in chunks:
            work(c)
    else:
        with ThreadPoolExecutor(max_workers=n_jobs) as pool:
            list(pool.map(work, chunks))
    return sums / np.maximum(counts, 1)[:, None]


def estimate(
    forest: Forest,
    moments: np.ndarray,
    X: np.ndarray,
    z: np.ndarray,
    lam,
    *,
    in_bag: np.ndarray | None = None,
    variance: bool = True,
    n_jobs: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Locally linear estimates (and variances) at the rows of ``X``.

    The forest's moments are summed once per row, whatever the number of
    penalties, so a grid of penalties costs little more than one.

    Parameters
    ----------
    forest : Forest
    moments : numpy.ndarray of shape (n_nodes, q + q^2 + q)
        :func:`leaf_means` of :func:`moment_columns`.
    X : numpy.ndarray of shape (n, p)
    z : numpy.ndarray of shape (n, q)
        The standardised correction covariates of the rows of ``X``.
    lam : float or sequence of float
        Ridge penalty (finite, positive), or several.
    in_bag, variance, n_jobs
        As in :func:`stratify.learners.honest_trees.estimate`; the variance
        needs a single penalty.

    Returns
    -------
    tau, var : numpy.ndarray of shape (n,), or (n, n_penalties) for a sequence
    """
    grid = np.atleast_1d(np.asarray(lam, dtype=np.float64))
    if variance and grid.size > 1:
        raise ValueError("variances are computed for one penalty at a time")
    X32 = np.ascontiguousarray(X, dtype=np.float32)
    z = np.ascontiguousarray(z, dtype=np.float64)
    n = X32.shape[0]
    tau, var = np.empty((n, grid.size)), np.empty(n)
    groups = forest.n_trees // forest.group_size
    bag = np.zeros((groups, 0), dtype=bool) if in_bag is None else in_bag

    def chunk(rows: slice) -> None:
        leaves = honest_trees.apply(forest, X32[rows])
        _aggregate(
            leaves, forest.numerator, forest.denominator, forest.count, moments, z[rows],
            grid, bag, in_bag is not None, rows.start, forest.group_size, variance,
            tau[rows], var[rows],
        )  # fmt: skip

    honest_trees.in_chunks(chunk, n, n_jobs)
    return (tau if np.ndim(lam) else tau[:, 0]), var


def choose_lambda(
    tau_plain: np.ndarray,
    candidates: dict[float, np.ndarray],
    numerator: np.ndarray,
    denominator: np.ndarray,
) -> tuple[float, dict[float, tuple[float, float]]]:
    """The penalty whose out-of-bag loss is least, if it beats the plain forest by > 1 SE.

    Parameters
    ----------
    tau_plain : numpy.ndarray of shape (n,)
        The forest's own out-of-bag estimates.
    candidates : dict of float to numpy.ndarray
        Out-of-bag corrected estimates per penalty.
    numerator, denominator : numpy.ndarray of shape (n,)
        The estimating-equation terms of the training patients.

    Returns
    -------
    lam : float
        The chosen penalty; ``inf`` keeps the plain forest.
    losses : dict of float to (float, float)
        Per penalty (``inf`` included): mean loss, and the standard error of its
        paired difference to the plain forest's (0 for ``inf``).
    """

    ok = np.isfinite(tau_plain) & (denominator > 0)
    for tau in candidates.values():
        ok &= np.isfinite(tau)
    num, den = numerator[ok], denominator[ok]

    def loss(tau: np.ndarray) -> np.ndarray:
        return (num - den * tau) ** 2 / den

    base = loss(tau_plain[ok])
    losses = {np.inf: (float(base.mean()), 0.0)}
    chosen, best = np.inf, np.inf
    for lam, tau in candidates.items():
        own = loss(tau[ok])
        diff = own - base
        se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else np.inf
        losses[lam] = (float(own.mean()), se)
        if diff.mean() + se < 0 and own.mean() < best:
            chosen, best = lam, float(own.mean())
    return chosen, losses


@numba.njit(cache=True, nogil=True)
def _fill(
    X,
    values,
    feature,
    threshold,
    left,
    right,
    roots,
    seeds,
    groups,
    n_drawn,
    n_sub,
    n_grow,
    honesty,
    group_size,
    sums,
    counts,
):  # pragma: no cover - compiled
    n = X.shape[0]
    for g in groups:
        _, _, estimate, _ = honest_trees.draw_group(
            n, n_drawn, n_sub, n_grow, honesty, group_size, seeds[g]
        )
        for j in range(group_size):
            root = roots[g * group_size + j]
            for s in estimate[j]:
                node = root
                while left[node] >= 0:
                    node = left[node] if X[s, feature[node]] <= threshold[node] else right[node]
                counts[node] += 1
                for c in range(values.shape[1]):
                    sums[node, c] += values[s, c]


@numba.njit(cache=True, nogil=True)
def _system(num, den, mom, z0, lam, q):  # pragma: no cover - compiled
    """Normal equations (M, v) at z0 from one set of (mean) leaf moments."""
    dz = mom[:q]
    dzz = mom[q : q + q * q]
    nz = mom[q + q * q :]
    M = np.empty((q + 1, q + 1))
    v = np.empty(q + 1)
    M[0, 0] = den
    v[0] = num
    for k in range(q):
        M[0, k + 1] = dz[k] - z0[k] * den
        M[k + 1, 0] = M[0, k + 1]
        v[k + 1] = nz[k] - z0[k] * num
        for m in range(q):
            M[k + 1, m + 1] = dzz[k * q + m] - z0[k] * dz[m] - z0[m] * dz[k] + z0[k] * z0[m] * den
        M[k + 1, k + 1] += lam * den
    return M, v


@numba.njit(cache=True, nogil=True)
def _aggregate(
    leaves,
    num,
    den,
    count,
    moments,
    z,
    lams,
    in_bag,
    oob,
    row0,
    group_size,
    variance,
    tau_out,
    var_out,
):  # pragma: no cover - compiled
    n_trees = leaves.shape[1]
    q = z.shape[1]
    m = moments.shape[1]
    for i in range(leaves.shape[0]):
        s_num = 0.0
        s_den = 0.0
        s_mom = np.zeros(m)
        k = 0
        for t in range(n_trees):
            leaf = leaves[i, t]
            if (oob and in_bag[t // group_size, row0 + i]) or count[leaf] == 0:
                continue
            s_num += num[leaf]
            s_den += den[leaf]
            s_mom += moments[leaf]
            k += 1
        if k == 0 or s_den == 0.0:
            tau_out[i] = np.nan
            var_out[i] = np.nan
            continue
        for c in range(lams.shape[0]):
            M, v = _system(s_num / k, s_den / k, s_mom / k, z[i], lams[c], q)
            b = np.linalg.solve(M, v)
            tau_out[i, c] = b[0]
        lam = lams[0]  # the variance is computed for a single penalty
        if not variance or group_size < 2:
            var_out[i] = np.nan
            continue
        e1 = np.zeros(q + 1)
        e1[0] = 1.0
        r = np.linalg.solve(M.T, e1)  # first row of M^-1
        usable = honest_trees.usable_groups(leaves[i], count, in_bag, oob, row0 + i, group_size)
        psi = np.zeros(n_trees)
        for t in range(n_trees):
            leaf = leaves[i, t]
            if usable[t // group_size]:
                M_t, v_t = _system(num[leaf], den[leaf], moments[leaf], z[i], lam, q)
                psi[t] = r @ (v_t - M_t @ b)
        var_out[i] = honest_trees.little_bag_variance(psi, usable, group_size)
