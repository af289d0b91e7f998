r"""Honest causal trees in compiled code: growing, pruning, applying, averaging.

This module is the numerical core of
:class:`stratify.learners.causal_survival_forest.CausalSurvivalForest`. It knows
nothing about survival: each training patient carries a numerator
:math:`\psi^{num}_i`, a denominator :math:`\psi^{den}_i` (the terms of an
estimating equation :math:`\sum_i \alpha_i (\psi^{num}_i - \psi^{den}_i \tau) = 0`),
an instrument :math:`z_i` (the centred treatment :math:`W_i - e(x_i)`) and a
failure flag, and a tree's estimate at ``x`` is the ratio of the leaf means of
numerator and denominator. It follows grf's algorithm (Athey, Tibshirani &
Wager, 2019; grf-labs/grf ``core/src``):

* **relabelling** -- at each node, with
  :math:`\hat\tau_P = \sum \psi^{num} / \sum \psi^{den}` over the node,
  every patient's response is the gradient
  :math:`\rho_i = (\psi^{num}_i - \psi^{den}_i \hat\tau_P) / \sum \psi^{den}`
  (grf's ``CausalSurvivalRelabelingStrategy``);
* **splitting** -- the split maximising
  :math:`(\sum_L \rho)^2 / n_L + (\sum_R \rho)^2 / n_R` among those that leave
  each child at least ``ceil(alpha * n)`` failures (at least 1), at least
  ``min_node_size`` patients with :math:`z` below and above the parent's mean,
  and a spread of :math:`z` of at least ``alpha`` times the parent's
  (grf's ``CausalSurvivalSplittingRule``); a node of ``min_node_size``
  patients or fewer is a leaf; ``mtry`` is drawn from a Poisson law at each
  node and capped at the number of covariates;
* **honesty** -- one part of each tree's subsample places the splits, the
  other (``honesty_fraction``) fills the leaves; leaves left empty are pruned
  away (the sibling takes the parent's place), so that every leaf of every tree
  holds at least one estimating patient;
* **little bags** -- trees come in groups of ``ci_group_size`` grown on one
  half-sample; a patient is out of bag for a group when it is not in the
  half-sample; the variance of the forest's estimate is grf's between-group
  variance minus the within-group noise, debiased by its objective-Bayes rule,
  divided by the squared mean denominator (the delta method;
  ``CausalSurvivalPredictionStrategy::compute_variance``).

The forest's estimate at ``x`` is
:math:`\bar\psi^{num}(x) / \bar\psi^{den}(x)`, the means over trees (those
where ``x`` is out of bag, for training patients) of the leaf means.

Covariates are compared in float32, as scikit-learn's trees do (a patient goes
left when ``x <= threshold``), so a tree converts exactly into
:class:`stratify.explain.trees.TreeModel` for TreeSHAP.

Every random draw comes from a seed per group of trees, so the forest is the
same whatever the number of threads.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numba
import numpy as np

#: Node marker of a leaf (in ``left``/``right``) and of a pruned empty subtree.
LEAF = -1
_EMPTY = -2


@dataclass(frozen=True, eq=False)
class Forest:
    """Trees stored flat: node ``k`` of tree ``t`` is row ``roots[t] + k``.

    ``left``/``right`` hold absolute row numbers (``-1`` for a leaf);
    ``numerator``/``denominator`` hold the leaf means of the estimating
    patients (and, at inner nodes, the means over the node's estimating
    patients); ``count`` the number of estimating patients at the node.
    Trees ``g * group_size`` to ``(g + 1) * group_size - 1`` form group ``g``.
    """

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    numerator: np.ndarray
    denominator: np.ndarray
    count: np.ndarray
    roots: np.ndarray
    group_size: int
    n_features: int

    @property
    def n_trees(self) -> int:
        """Number of trees."""
        return len(self.roots)

    def tree(self, t: int) -> slice:
        """The rows of tree ``t``."""
        end = self.roots[t + 1] if t + 1 < len(self.roots) else len(self.feature)
        return slice(int(self.roots[t]), int(end))


@dataclass(frozen=True)
class TreeOptions:
    """How each tree grows (grf's names and defaults)."""

    mtry: int
    min_node_size: int = 5
    alpha: float = 0.05
    imbalance_penalty: float = 0.0
    honesty: bool = True
    honesty_fraction: float = 0.5
    prune: bool = True


def grow_forest(
    X: np.ndarray,
    numerator: np.ndarray,
    denominator: np.ndarray,
    instrument: np.ndarray,
    failure: np.ndarray,
    *,
    n_trees: int,
    sample_fraction: float,
    group_size: int,
    options: TreeOptions,
    seed: int,
    n_jobs: int = 1,
) -> tuple[Forest, np.ndarray]:
    """Grow ``n_trees`` honest trees on the rows of ``X``.

    Parameters
    ----------
    X : numpy.ndarray of shape (n, p)
        Covariates (compared as float32).
    numerator, denominator, instrument : numpy.ndarray of shape (n,)
        Terms of the estimating equation and the centred treatment.
    failure : numpy.ndarray of shape (n,)
        Whether the patient's outcome was observed (an event, or follow-up past
        the horizon): splits keep failures on both sides.
    n_trees : int
        Number of trees; with ``group_size > 1`` a multiple of it.
    sample_fraction : float
        Share of patients drawn (without replacement) for each tree; with
        groups, a group draws half the patients and each of its trees
        ``2 * sample_fraction`` of that half (grf's rule).
    group_size : int
        Trees per little bag (grf's ``ci.group.size``); 1 for no variance.
    options : TreeOptions
        Growing options.
    seed : int
        Seed; group ``g`` draws from ``(seed, g)``.
    n_jobs : int
        Threads.

    Returns
    -------
    forest : Forest
    in_bag : numpy.ndarray of shape (n_groups, n), bool
        Whether each patient was drawn by each group (for out-of-bag estimates).
    """
    X32 = np.ascontiguousarray(X, dtype=np.float32)
    n = X32.shape[0]
    num = np.ascontiguousarray(numerator, dtype=np.float64)
    den = np.ascontiguousarray(denominator, dtype=np.float64)
    z = np.ascontiguousarray(instrument, dtype=np.float64)
    fail = np.ascontiguousarray(failure, dtype=np.bool_)
    n_groups = n_trees // group_size
    sizes = subsample_sizes(n, group_size, sample_fraction, options)
    seeds = np.random.SeedSequence(seed).generate_state(n_groups).astype(np.int64)
    batches = [slice(b, min(b + BATCH, n_groups)) for b in range(0, n_groups, BATCH)]

    def batch(groups: slice) -> tuple:
        return _grow_batch(
            X32, num, den, z, fail, seeds[groups], *sizes, options.honesty, group_size,
            options.mtry, options.min_node_size, options.alpha, options.imbalance_penalty,
            options.prune,
        )  # fmt: skip

    if n_jobs == 1:
        grown = [batch(b) for b in batches]
    else:
        with ThreadPoolExecutor(max_workers=n_jobs) as pool:
            grown = list(pool.map(batch, batches))
    in_bag = np.concatenate([g[-1] for g in grown])
    return _stack(grown, group_size, X32.shape[1]), in_bag


#: Groups of trees grown in one compiled call (bounds the scratch memory of a call).
BATCH = 16


def subsample_sizes(n: int, group_size: int, sample_fraction: float, options: TreeOptions):
    """Patients a group draws, each of its trees subsamples, and grows with."""
    half = 0.5 if group_size > 1 else sample_fraction
    tree_fraction = min(2 * sample_fraction, 1.0) if group_size > 1 else 1.0
    drawn = max(int(n * half), 1)
    sub = max(int(drawn * tree_fraction), 1)
    n_grow = int(sub * (1 - options.honesty_fraction)) if options.honesty else sub
    return drawn, sub, n_grow


def group_samples(
    n: int, seed: int, group_size: int, sample_fraction: float, options: TreeOptions
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The patients a group of trees draws, and for each of its trees who grows and estimates.

    ``seed`` is the group's own seed. Returns ``(drawn, grow, estimate)``:
    sorted row numbers, ``grow[j]`` and ``estimate[j]`` for tree ``j``. With
    honesty they are disjoint parts of the tree's subsample of ``drawn``;
    without, both are the whole subsample.
    """
    sizes = subsample_sizes(n, group_size, sample_fraction, options)
    drawn, grow, estimate, _ = draw_group(n, *sizes, options.honesty, group_size, seed)
    return drawn, grow, estimate


def _stack(batches: list[tuple], group_size: int, n_features: int) -> Forest:
    """One Forest from :func:`_grow_batch` results (node fields, tree sizes, in-bag)."""
    sizes = np.concatenate([b[7] for b in batches])
    roots = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    fields = [np.concatenate([b[k] for b in batches]) for k in range(7)]
    left, right = fields[2].astype(np.int64), fields[3].astype(np.int64)
    offsets = np.repeat(roots, sizes)
    left = np.where(left >= 0, left + offsets, LEAF)
    right = np.where(right >= 0, right + offsets, LEAF)
    return Forest(
        feature=fields[0],
        threshold=fields[1],
        left=left,
        right=right,
        numerator=fields[4],
        denominator=fields[5],
        count=fields[6],
        roots=roots,
        group_size=group_size,
        n_features=n_features,
    )


def apply(forest: Forest, X: np.ndarray, n_jobs: int = 1) -> np.ndarray:
    """Leaf (row of the flat forest) of every patient in every tree, shape (n, n_trees)."""
    X32 = np.ascontiguousarray(X, dtype=np.float32)
    out = np.empty((X32.shape[0], forest.n_trees), dtype=np.int64)

    def chunk(rows: slice) -> None:
        _apply(
            X32[rows], forest.feature, forest.threshold, forest.left, forest.right,
            forest.roots, out[rows],
        )  # fmt: skip

    in_chunks(chunk, X32.shape[0], n_jobs)
    return out


def estimate(
    forest: Forest,
    X: np.ndarray,
    *,
    in_bag: np.ndarray | None = None,
    variance: bool = True,
    n_jobs: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """The forest's estimate and its variance for every row of ``X``.

    Parameters
    ----------
    forest : Forest
    X : numpy.ndarray of shape (n, p)
    in_bag : numpy.ndarray of shape (n_groups, n), optional
        For out-of-bag estimates of the training patients (rows of ``X`` in
        training order): trees of a group that drew the patient are left out.
    variance : bool
        Whether to compute the variance (NaN otherwise).
    n_jobs : int
        Threads.

    Returns
    -------
    tau, var : numpy.ndarray of shape (n,)
        NaN where no tree is available (a patient drawn by every group).
    """
    X32 = np.ascontiguousarray(X, dtype=np.float32)
    n = X32.shape[0]
    tau, var = np.empty(n), np.empty(n)
    groups = forest.n_trees // forest.group_size
    bag = np.zeros((groups, 0), dtype=bool) if in_bag is None else in_bag

    def chunk(rows: slice) -> None:
        leaves = np.empty((rows.stop - rows.start, forest.n_trees), dtype=np.int64)
        _apply(
            X32[rows], forest.feature, forest.threshold, forest.left, forest.right,
            forest.roots, leaves,
        )  # fmt: skip
        _aggregate(
            leaves, forest.numerator, forest.denominator, forest.count, bag, in_bag is not None,
            rows.start, forest.group_size, variance, tau[rows], var[rows],
        )  # fmt: skip

    in_chunks(chunk, n, n_jobs)
    return tau, var


def in_chunks(work, n: int, n_jobs: int, size: int = 1024) -> None:
    """Call ``work(rows)`` on slices of ``size`` rows, on ``n_jobs`` threads."""
    chunks = [slice(s, min(s + size, n)) for s in range(0, n, size)]
    if n_jobs == 1 or len(chunks) == 1:
        for c in chunks:
            work(c)
    else:
        with ThreadPoolExecutor(max_workers=n_jobs) as pool:
            list(pool.map(work, chunks))


@numba.njit(cache=True, nogil=True)
def _apply(X, feature, threshold, left, right, roots, out):  # pragma: no cover - compiled
    for i in range(X.shape[0]):
        for t in range(roots.shape[0]):
            node = roots[t]
            while left[node] >= 0:
                node = left[node] if X[i, feature[node]] <= threshold[node] else right[node]
            out[i, t] = node


@numba.njit(cache=True, nogil=True)
def _aggregate(
    leaves, num, den, count, in_bag, oob, row0, group_size, variance, tau_out, var_out
):  # pragma: no cover - compiled
    n_trees = leaves.shape[1]
    for i in range(leaves.shape[0]):
        s_num = 0.0
        s_den = 0.0
        k = 0
        for t in range(n_trees):
            if (oob and in_bag[t // group_size, row0 + i]) or count[leaves[i, t]] == 0:
                continue
            s_num += num[leaves[i, t]]
            s_den += den[leaves[i, t]]
            k += 1
        if k == 0 or s_den == 0.0:
            tau_out[i] = np.nan
            var_out[i] = np.nan
            continue
        tau = s_num / s_den
        tau_out[i] = tau
        if not variance or group_size < 2:
            var_out[i] = np.nan
            continue
        v_est = s_den / k
        usable = usable_groups(leaves[i], count, in_bag, oob, row0 + i, group_size)
        psi = np.zeros(n_trees)
        for t in range(n_trees):
            if usable[t // group_size]:
                psi[t] = num[leaves[i, t]] - den[leaves[i, t]] * tau
        var_out[i] = little_bag_variance(psi, usable, group_size) / (v_est * v_est)


@numba.njit(cache=True, nogil=True)
def usable_groups(leaves, count, in_bag, oob, row, group_size):  # pragma: no cover - compiled
    """Groups whose trees all give the patient an estimate (and, out of bag, never drew it)."""
    n_groups = leaves.shape[0] // group_size
    usable = np.ones(n_groups, np.bool_)
    for g in range(n_groups):
        if oob and in_bag[g, row]:
            usable[g] = False
            continue
        for j in range(group_size):
            if count[leaves[g * group_size + j]] == 0:
                usable[g] = False
    return usable


@numba.njit(cache=True, nogil=True)
def little_bag_variance(psi, usable, group_size):  # pragma: no cover - compiled
    """grf's variance of a forest average from per-tree terms ``psi`` over the usable groups.

    The between-group variance minus the within-group noise, debiased by
    :func:`debias` (``compute_variance`` of grf's prediction strategies); NaN
    without a usable group.
    """
    good = 0
    psi_sq = 0.0
    grouped_sq = 0.0
    for g in range(usable.shape[0]):
        if not usable[g]:
            continue
        group_psi = 0.0
        for j in range(group_size):
            value = psi[g * group_size + j]
            psi_sq += value * value
            group_psi += value
        group_psi /= group_size
        grouped_sq += group_psi * group_psi
        good += 1
    if good == 0:
        return np.nan
    var_between = grouped_sq / good
    var_total = psi_sq / (good * group_size)
    group_noise = (var_total - var_between) / (group_size - 1)
    return debias(var_between, group_noise, good)


@numba.njit(cache=True, nogil=True)
def debias(var_between, group_noise, n_groups):  # pragma: no cover - compiled
    """grf's ObjectiveBayesDebiaser: var_between - group_noise, kept positive."""
    initial = var_between - group_noise
    se = max(var_between, group_noise) * math.sqrt(2.0 / n_groups)
    if abs(se) <= 1e-10:
        return 0.0
    ratio = initial / se
    numerator = math.exp(-ratio * ratio / 2) / math.sqrt(2 * math.pi)
    denominator = 0.5 * math.erfc(-ratio / math.sqrt(2.0))
    return initial + se * numerator / denominator


@numba.njit(cache=True, nogil=True)
def draw_group(n, n_drawn, n_sub, n_grow, honesty, group_size, seed):  # pragma: no cover
    """Half-sample, per-tree subsamples split into growing/estimating parts, tree seeds."""
    np.random.seed(seed)  # noqa: NPY002 - numba's per-thread generator
    drawn = np.sort(np.random.permutation(n)[:n_drawn])  # noqa: NPY002
    n_est = n_sub - n_grow if honesty else n_sub
    grow = np.empty((group_size, n_grow), np.int64)
    estimate = np.empty((group_size, n_est), np.int64)
    tree_seeds = np.empty(group_size, np.int64)
    for j in range(group_size):
        sub = drawn[np.random.permutation(n_drawn)[:n_sub]]  # noqa: NPY002
        grow[j] = np.sort(sub[:n_grow])
        estimate[j] = np.sort(sub[n_grow:]) if honesty else grow[j]
        tree_seeds[j] = np.random.randint(0, 2**31 - 1)  # noqa: NPY002
    return drawn, grow, estimate, tree_seeds


@numba.njit(cache=True, nogil=True)
def _grow_batch(
    X,
    num,
    den,
    z,
    fail,
    seeds,
    n_drawn,
    n_sub,
    n_grow,
    honesty,
    group_size,
    mtry,
    min_node_size,
    alpha,
    imbalance,
    prune,
):  # pragma: no cover - compiled
    """Grow the groups of ``seeds``; node fields concatenated, tree sizes, in-bag rows."""
    n = X.shape[0]
    n_trees = len(seeds) * group_size
    cap = n_trees * (2 * n_grow + 1)
    feature = np.empty(cap, np.int32)
    threshold = np.empty(cap, np.float32)
    left = np.empty(cap, np.int64)
    right = np.empty(cap, np.int64)
    numerator = np.empty(cap)
    denominator = np.empty(cap)
    count = np.empty(cap, np.int64)
    sizes = np.empty(n_trees, np.int64)
    in_bag = np.zeros((len(seeds), n), np.bool_)
    used = 0
    for g in range(len(seeds)):
        drawn, grow, estimate, tree_seeds = draw_group(
            n, n_drawn, n_sub, n_grow, honesty, group_size, seeds[g]
        )
        in_bag[g, drawn] = True
        for j in range(group_size):
            f, th, lf, rt, nm, dn, ct = _grow_tree(
                X,
                num,
                den,
                z,
                fail,
                grow[j],
                estimate[j],
                mtry,
                min_node_size,
                alpha,
                imbalance,
                prune,
                tree_seeds[j],
            )
            size = len(f)
            feature[used : used + size] = f
            threshold[used : used + size] = th
            left[used : used + size] = lf
            right[used : used + size] = rt
            numerator[used : used + size] = nm
            denominator[used : used + size] = dn
            count[used : used + size] = ct
            sizes[g * group_size + j] = size
            used += size
    return (
        feature[:used],
        threshold[:used],
        left[:used],
        right[:used],
        numerator[:used],
        denominator[:used],
        count[:used],
        sizes,
        in_bag,
    )


@numba.njit(cache=True, nogil=True)
def _grow_tree(
    X, num, den, z, fail, grow, estimate, mtry, min_node_size, alpha, imbalance, prune, seed
):  # pragma: no cover - compiled
    np.random.seed(seed)  # noqa: NPY002 - numba's per-thread generator
    n_grow = grow.shape[0]
    cap = 2 * n_grow + 1
    feature = np.zeros(cap, np.int32)
    threshold = np.zeros(cap, np.float32)
    left = np.full(cap, LEAF, np.int64)
    right = np.full(cap, LEAF, np.int64)
    start = np.zeros(cap, np.int64)
    end = np.zeros(cap, np.int64)
    samples = grow.copy()
    response = np.empty(n_grow)
    p = X.shape[1]
    start[0], end[0] = 0, n_grow
    n_nodes = 1
    node = 0
    while node < n_nodes:  # breadth first, as grf
        lo, hi = start[node], end[node]
        split = _best_split(
            X, num, den, z, fail, samples, lo, hi, response, p, mtry, min_node_size, alpha,
            imbalance,
        )  # fmt: skip
        if split[0] >= 0:
            var, value = split[0], np.float32(split[1])
            # partition samples[lo:hi] on X[:, var] <= value
            i, j = lo, hi - 1
            while i <= j:
                if X[samples[i], var] <= value:
                    i += 1
                else:
                    samples[i], samples[j] = samples[j], samples[i]
                    j -= 1
            feature[node], threshold[node] = var, value
            left[node], right[node] = n_nodes, n_nodes + 1
            start[n_nodes], end[n_nodes] = lo, i
            start[n_nodes + 1], end[n_nodes + 1] = i, hi
            n_nodes += 2
        node += 1
    # honest leaves: the estimating patients fill them
    count = np.zeros(n_nodes, np.int64)
    s_num = np.zeros(n_nodes)
    s_den = np.zeros(n_nodes)
    for s in estimate:
        node = 0
        while True:
            count[node] += 1
            s_num[node] += num[s]
            s_den[node] += den[s]
            if left[node] < 0:
                break
            node = left[node] if X[s, feature[node]] <= threshold[node] else right[node]
    return _compact(feature, threshold, left, right, count, s_num, s_den, n_nodes, prune)


@numba.njit(cache=True, nogil=True)
def _best_split(  # noqa: C901 - one compiled loop
    X, num, den, z, fail, samples, lo, hi, response, p, mtry, min_node_size, alpha, imbalance
):  # pragma: no cover - compiled
    """(feature, value) of the best split of samples[lo:hi], or (-1, 0) for a leaf."""
    m = hi - lo
    if m <= min_node_size:
        return -1, 0.0
    sum_num = 0.0
    sum_den = 0.0
    for k in range(lo, hi):
        sum_num += num[samples[k]]
        sum_den += den[samples[k]]
    if abs(sum_den) <= 1e-10:
        return -1, 0.0
    tau = sum_num / sum_den
    sum_z = 0.0
    sum_z2 = 0.0
    failures = 0
    for k in range(lo, hi):
        s = samples[k]
        response[k - lo] = (num[s] - den[s] * tau) / sum_den
        sum_z += z[s]
        sum_z2 += z[s] * z[s]
        failures += fail[s]
    size_node = sum_z2 - sum_z * sum_z / m
    min_child_size = size_node * alpha
    min_failures = max(math.ceil(m * alpha), 1)
    mean_z = sum_z / m
    small_z_node = 0
    for k in range(lo, hi):
        if z[samples[k]] < mean_z:
            small_z_node += 1
    sum_resp = 0.0
    for k in range(m):
        sum_resp += response[k]
    draw = min(max(np.random.poisson(mtry), 1), p)  # noqa: NPY002
    variables = np.random.permutation(p)[:draw]  # noqa: NPY002
    best_var = -1
    best_value = 0.0
    best = 0.0
    values = np.empty(m, np.float32)
    for var in variables:
        for k in range(m):
            values[k] = X[samples[lo + k], var]
        order = np.argsort(values, kind="mergesort")
        n_left = 0
        small_left = 0
        fail_left = 0
        sum_left = 0.0
        z_left = 0.0
        z2_left = 0.0
        for r in range(m - 1):
            k = order[r]
            s = samples[lo + k]
            n_left += 1
            sum_left += response[k]
            z_left += z[s]
            z2_left += z[s] * z[s]
            small_left += z[s] < mean_z
            fail_left += fail[s]
            if values[order[r + 1]] == values[k]:
                continue  # split only between distinct values
            if fail_left < min_failures:
                continue
            if failures - fail_left < min_failures:
                break
            if small_left < min_node_size or n_left - small_left < min_node_size:
                continue
            n_right = m - n_left
            small_right = small_z_node - small_left
            if small_right < min_node_size or n_right - small_right < min_node_size:
                break
            size_left = z2_left - z_left * z_left / n_left
            if size_left < min_child_size or (imbalance > 0.0 and size_left == 0):
                continue
            z_right = sum_z - z_left
            size_right = (sum_z2 - z2_left) - z_right * z_right / n_right
            if size_right < min_child_size or (imbalance > 0.0 and size_right == 0):
                continue
            sum_right = sum_resp - sum_left
            decrease = sum_left * sum_left / n_left + sum_right * sum_right / n_right
            decrease -= imbalance * (1.0 / size_left + 1.0 / size_right)
            if decrease > best:
                best = decrease
                best_var = var
                best_value = values[k]
    if best <= 0.0:
        return -1, 0.0
    return best_var, best_value


@numba.njit(cache=True, nogil=True)
def _compact(  # noqa: C901 - one compiled loop
    feature, threshold, left, right, count, s_num, s_den, n_nodes, prune
):  # pragma: no cover - compiled
    """The tree without empty leaves (grf's honesty pruning), renumbered from 0."""
    target = np.arange(n_nodes)
    if prune:
        for node in range(n_nodes - 1, -1, -1):  # children come after their parent
            if left[node] < 0:
                target[node] = node if count[node] > 0 else _EMPTY
                continue
            lt, rt = target[left[node]], target[right[node]]
            if lt == _EMPTY and rt == _EMPTY:
                target[node] = _EMPTY
            elif lt == _EMPTY:
                target[node] = rt
            elif rt == _EMPTY:
                target[node] = lt
            else:
                left[node], right[node] = lt, rt
    root = target[0]
    if root == _EMPTY:  # no estimating patient at all: one empty leaf
        root = 0
        left[0] = LEAF
        right[0] = LEAF
    new_id = np.full(n_nodes, -1, np.int64)
    queue = np.empty(n_nodes, np.int64)
    queue[0] = root
    new_id[root] = 0
    size = 1
    head = 0
    while head < size:
        node = queue[head]
        head += 1
        if left[node] >= 0:
            for child in (left[node], right[node]):
                new_id[child] = size
                queue[size] = child
                size += 1
    f = np.zeros(size, np.int32)
    th = np.zeros(size, np.float32)
    lf = np.full(size, LEAF, np.int64)
    rt_ = np.full(size, LEAF, np.int64)
    nm = np.zeros(size)
    dn = np.zeros(size)
    ct = np.zeros(size, np.int64)
    for k in range(size):
        node = queue[k]
        ct[k] = count[node]
        if count[node] > 0:
            nm[k] = s_num[node] / count[node]
            dn[k] = s_den[node] / count[node]
        if left[node] >= 0:
            f[k] = feature[node]
            th[k] = threshold[node]
            lf[k] = new_id[left[node]]
            rt_[k] = new_id[right[node]]
    return f, th, lf, rt_, nm, dn, ct
