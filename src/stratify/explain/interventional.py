"""Interventional TreeSHAP in float64: baseline Shapley values of a sum of trees, in closed form.

Interventional SHAP values of a model ``f`` at ``x`` over a background sample
``r_1, ..., r_m`` are the mean over the background of the Shapley values of the
games ``v_r(S) = f(x_S, r_{not S})`` (the *baseline* Shapley values). For one
tree the game is a sum over leaves of ``value_l * [hybrid point reaches l]``,
and a hybrid point reaches leaf ``l`` when every feature on the path to ``l``
lies in the leaf's box: feature ``j`` comes from ``x`` if ``j`` is in ``S`` and
from ``r`` otherwise. With ``B`` the path features on which ``x`` falls outside
the box and ``A`` those on which ``r`` does, the leaf is reachable only when
``A`` and ``B`` are disjoint, and then its indicator game is
``[A subset of S and S disjoint from B]``, whose Shapley values are

- ``(a - 1)! b! / (a + b)!`` for each feature in ``A`` (``a = |A|``, ``b = |B|``),
- ``-a! (b - 1)! / (a + b)!`` for each feature in ``B``,
- zero for the others.

So a leaf's share of a patient's SHAP values depends on the patient only
through ``B`` and on the background only through how many rows have each
``A``. This module groups patients by ``(leaf, B)`` and background rows by
``(leaf, A)``, evaluates the closed form once per compatible pair of groups and
scatters it back: exact, in float64 throughout (additivity to rounding). Where
patients and reference rows share leaf patterns, as they do for forests with
leaves of several patients, that is much faster than evaluating every patient
against every background row; for very deep trees (a leaf per patient) the
patterns are nearly all distinct and the work approaches that of the pairwise
evaluation, in bounded memory.

This is the same quantity shap's ``TreeExplainer(feature_perturbation=
"interventional")`` computes (shap's C++ kernel stores node values, thresholds
and weights in float32, so the two agree to about 1e-7 of the output's scale).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb

import numpy as np
from scipy.sparse import csr_matrix

_CHUNK_CELLS = 4_000_000
"""Patients are processed in chunks of at most this many (patient, leaf, feature) cells."""

_MAX_PAIRS = 2_000_000
"""Rows are split until (cell, background group) pairs and cell values stay below this."""

_WORD_BITS = 62
"""Feature sets of trees splitting on at most this many features are held as one int64."""

_KEY_BITS = 62
"""(leaf, set) pairs that fit in this many bits are deduplicated as one int64 key."""


@dataclass(frozen=True)
class _Boxes:
    """The leaves of one tree as boxes over the features split on in that tree.

    Attributes
    ----------
    features : numpy.ndarray of shape (d,)
        Column indices of the features the tree splits on (the local feature axis).
    values : numpy.ndarray of shape (n_leaves, n_outputs)
        Leaf values.
    low, high : numpy.ndarray of shape (n_leaves, d)
        A value ``z`` of local feature ``j`` is in the box of leaf ``l`` when
        ``low[l, j] < z <= high[l, j]`` (infinite bounds off the path).
    nan_in : numpy.ndarray of shape (n_leaves, d), bool
        Whether a missing value of feature ``j`` is routed along the path to ``l``.
    """

    features: np.ndarray
    values: np.ndarray
    low: np.ndarray
    high: np.ndarray
    nan_in: np.ndarray

    def outside(self, Z: np.ndarray) -> np.ndarray:
        """For each row and leaf, which local features fall outside the leaf's box.

        Parameters
        ----------
        Z : numpy.ndarray of shape (n, n_features)
            Rows, float32 values as float64 (NaN for missing).

        Returns
        -------
        numpy.ndarray of shape (n, n_leaves, d), bool
        """
        z = Z[:, self.features][:, None, :]
        inside = (z > self.low) & (z <= self.high)
        missing = np.isnan(z)
        if missing.any():
            inside = np.where(missing, self.nan_in, inside)
        return ~inside


def interventional_shap(trees, base_offset, X: np.ndarray, background: np.ndarray):
    """Exact interventional SHAP values of ``base_offset + sum of trees``, in float64.

    Parameters
    ----------
    trees : sequence of dict
        Trees in shap's ``SingleTree`` dict format, as held by
        :class:`stratify.explain.trees.TreeModel` (``values`` of shape
        ``(n_nodes, n_outputs)``; a row goes left when its value is
        ``<= threshold``, a NaN follows ``children_default``).
    base_offset : numpy.ndarray of shape (n_outputs,)
        The constant added to the trees.
    X : numpy.ndarray of shape (n, n_features)
        Rows to explain (float32 values as float64).
    background : numpy.ndarray of shape (m, n_features)
        The background sample, every row weighted equally.

    Returns
    -------
    values : numpy.ndarray of shape (n, n_features, n_outputs)
        SHAP values.
    expected : numpy.ndarray of shape (n_outputs,)
        The model's mean output over the background; for every row,
        ``expected + values.sum(axis=1)`` is the model's output.
    """
    n, p = X.shape
    m = background.shape[0]
    n_outputs = int(np.asarray(base_offset).shape[0])
    values = np.zeros((n, p, n_outputs))
    expected = np.array(base_offset, dtype=float)
    for tree in trees:
        boxes = _boxes(tree)
        if boxes.features.size == 0:  # a single leaf: a constant, no SHAP value
            expected += boxes.values[0]
            continue
        out_bg = boxes.outside(background)
        reach = ~out_bg.any(axis=2)  # (m, L): the leaf each background row falls in
        expected += reach.sum(axis=0) @ boxes.values / m
        groups = _Groups.of(out_bg)
        size = max(1, _CHUNK_CELLS // out_bg[0].size)
        for start in range(0, n, size):
            stop = start + size
            values[start:stop, boxes.features] += _rows_shap(boxes, groups, X[start:stop], m)
    return values, expected


def _rows_shap(boxes: _Boxes, groups: _Groups, rows: np.ndarray, m: int) -> np.ndarray:
    """One tree's SHAP values for ``rows``, split in halves until the work arrays are small.

    The pairs of (leaf, B) cells with background groups, and the per-cell
    values (cells x features x outputs), are counted before they are made: at
    most :data:`_MAX_PAIRS` of either (a few hundred MB at the most), whatever
    the trees' sizes and the background.
    """
    out_x = boxes.outside(rows)
    cells = _Sets.of(out_x)  # the distinct (leaf, B) cells
    pairs = int(groups.count_per_leaf[cells.leaf].sum())
    per_cell = cells.leaf.size * out_x.shape[2] * boxes.values.shape[1]
    if max(pairs, per_cell) > _MAX_PAIRS and rows.shape[0] > 1:
        half = rows.shape[0] // 2
        return np.concatenate(
            [_rows_shap(boxes, groups, rows[:half], m), _rows_shap(boxes, groups, rows[half:], m)]
        )
    return _tree_shap(boxes, groups, out_x, cells, m)


def _tree_shap(
    boxes: _Boxes, groups: _Groups, out_x: np.ndarray, cells: _Sets, m: int
) -> np.ndarray:
    """One tree's SHAP values for some rows, on the tree's local features: (n, d, n_outputs)."""
    n, n_leaves, d = out_x.shape
    b = cells.members.sum(axis=1)
    # pair every cell with the background groups of its leaf
    per_cell = groups.count_per_leaf[cells.leaf]
    offsets = np.cumsum(per_cell) - per_cell
    cell = np.repeat(np.arange(cells.leaf.size), per_cell)
    g = np.arange(cell.size) + (groups.start[cells.leaf] - offsets)[cell]
    compatible = ~(groups.sets.words[g] & cells.words[cell]).any(axis=1)
    w_in, w_out = _table(d)
    a, bc = groups.size[g], b[cell]
    count = np.where(compatible, groups.count[g], 0.0)
    indptr = np.append(offsets, cell.size)
    shape = (cells.leaf.size, groups.size.size)
    s_in = csr_matrix((count * w_in[a, bc], g, indptr), shape=shape) @ groups.members
    s_out = np.add.reduceat(count * w_out[a, bc], offsets)
    table = (s_in - cells.members * s_out[:, None]) / m  # (cells, d): SHAP per unit leaf value
    by_cell = table[:, :, None] * boxes.values[cells.leaf][:, None, :]  # (cells, d, n_outputs)
    # each row sums its n_leaves cells
    rows = csr_matrix(
        (np.ones(cells.inverse.size), cells.inverse, np.arange(0, n * n_leaves + 1, n_leaves)),
        shape=(n, cells.leaf.size),
    )
    return (rows @ by_cell.reshape(cells.leaf.size, -1)).reshape(n, d, -1)


@dataclass(frozen=True)
class _Sets:
    """The distinct (leaf, feature set) pairs among rows x leaves, sorted by leaf.

    Attributes
    ----------
    leaf : numpy.ndarray of shape (u,)
        The leaf of each distinct pair.
    members : numpy.ndarray of shape (u, d), bool
        Its feature set.
    words : numpy.ndarray of shape (u, w), uint64
        The same set as bits, for fast intersection tests.
    inverse : numpy.ndarray of shape (n_rows * n_leaves,)
        For each (row, leaf), in row-major order, the index of its pair.
    """

    leaf: np.ndarray
    members: np.ndarray
    words: np.ndarray
    inverse: np.ndarray

    @classmethod
    def of(cls, outside: np.ndarray) -> _Sets:
        """Deduplicate the (row, leaf) feature sets of ``outside`` (n, n_leaves, d)."""
        n, n_leaves, d = outside.shape
        flat = outside.reshape(-1, d)
        leaf = np.broadcast_to(np.arange(n_leaves), (n, n_leaves)).reshape(-1)
        if d <= _WORD_BITS:  # one int64 word per set
            words = (flat.view(np.uint8) @ (1 << np.arange(d, dtype=np.int64)))[:, None]
        else:
            bits = np.packbits(flat, axis=1, bitorder="little")
            padded = np.zeros((flat.shape[0], -(-bits.shape[1] // 8) * 8), dtype=np.uint8)
            padded[:, : bits.shape[1]] = bits
            words = padded.view(np.int64)
        if d + (n_leaves - 1).bit_length() <= _KEY_BITS:
            first, inverse = _unique_keys((leaf.astype(np.int64) << d) | words[:, 0], n_leaves << d)
        else:  # wide trees: compare rows of (leaf, words)
            rows = np.column_stack([leaf.astype(np.int64), words])
            _, first, inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)
        return cls(leaf[first], flat[first], words[first], inverse.reshape(-1))


def _unique_keys(key: np.ndarray, bound: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct non-negative keys below ``bound``: (index of a row with each, inverse).

    A lookup table when ``bound`` is small next to the number of keys (no sort),
    ``numpy.unique`` otherwise.
    """
    if bound > 4 * key.size:
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        return first, inverse
    row = np.full(bound, -1, dtype=np.intp)
    row[key] = np.arange(key.size)  # some row holding each key
    present = row >= 0
    return row[present], (np.cumsum(present) - 1)[key]


@dataclass(frozen=True)
class _Groups:
    """Background rows grouped by (leaf, set of features outside the leaf's box).

    Groups are sorted by leaf; the groups of leaf ``l`` are
    ``start[l] : start[l] + count_per_leaf[l]``. ``sets`` are the features
    outside the box, ``members`` the same as floats (groups x d), ``size``
    their number, ``count`` the background rows in the group.
    """

    sets: _Sets
    members: np.ndarray
    size: np.ndarray
    count: np.ndarray
    start: np.ndarray
    count_per_leaf: np.ndarray

    @classmethod
    def of(cls, out_bg: np.ndarray) -> _Groups:
        """Group the background (every leaf gets at least one group)."""
        sets = _Sets.of(out_bg)
        per_leaf = np.bincount(sets.leaf, minlength=out_bg.shape[1])
        return cls(
            sets=sets,
            members=sets.members.astype(float),
            size=sets.members.sum(axis=1),
            count=np.bincount(sets.inverse, minlength=sets.leaf.size).astype(float),
            start=np.cumsum(per_leaf) - per_leaf,
            count_per_leaf=per_leaf,
        )


def _shapley_tables(d: int) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form Shapley weights of ``[A subset of S, S disjoint from B]``, by (|A|, |B|).

    ``w_in[a, b] = (a-1)! b! / (a+b)! = 1 / (a C(a+b, a))`` for a member of
    ``A``; ``w_out[a, b] = a! (b-1)! / (a+b)! = 1 / (b C(a+b, b))`` for a member
    of ``B`` (entered with a minus sign). Zero where the set is empty.
    """
    w_in = np.zeros((d + 1, d + 1))
    w_out = np.zeros((d + 1, d + 1))
    for a in range(d + 1):
        for b in range(d + 1):
            if a:
                w_in[a, b] = 1.0 / (a * comb(a + b, a))
            if b:
                w_out[a, b] = 1.0 / (b * comb(a + b, b))
    return w_in, w_out


_TABLES: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _table(d: int) -> tuple[np.ndarray, np.ndarray]:
    """Cached :func:`_shapley_tables`."""
    if d not in _TABLES:
        _TABLES[d] = _shapley_tables(d)
    return _TABLES[d]


def _boxes(tree: dict) -> _Boxes:
    """The leaves of a tree and their boxes, by a walk from the root."""
    left, right = tree["children_left"], tree["children_right"]
    default, feature = tree["children_default"], tree["features"]
    threshold = tree["thresholds"]
    internal = left >= 0
    features = np.unique(feature[internal]).astype(np.intp)
    column = {int(f): j for j, f in enumerate(features)}
    d = features.size
    leaves, lows, highs, nans = [], [], [], []
    stack = [(0, np.full(d, -np.inf), np.full(d, np.inf), np.ones(d, dtype=bool))]
    while stack:
        node, low, high, nan_in = stack.pop()
        if left[node] < 0:
            leaves.append(node)
            lows.append(low)
            highs.append(high)
            nans.append(nan_in)
            continue
        j, t = column[int(feature[node])], threshold[node]
        for child, goes_left in ((right[node], False), (left[node], True)):
            lo, hi, nan = low.copy(), high.copy(), nan_in.copy()
            if goes_left:
                hi[j] = min(hi[j], t)
            else:
                lo[j] = max(lo[j], t)
            nan[j] &= default[node] == child
            stack.append((int(child), lo, hi, nan))
    leaves = np.array(leaves, dtype=np.intp)
    return _Boxes(
        features=features,
        values=np.asarray(tree["values"], dtype=float)[leaves],
        low=np.array(lows).reshape(len(leaves), d),
        high=np.array(highs).reshape(len(leaves), d),
        nan_in=np.array(nans, dtype=bool).reshape(len(leaves), d),
    )


__all__ = ["interventional_shap"]
