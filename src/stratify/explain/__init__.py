"""Explaining benefit: exact SHAP for survival forests and learners, and the modifier's role.

:mod:`stratify.explain.trees` turns scikit-survival's trees into sums of
trees and hands them to shap's exact path-dependent TreeSHAP, or to
:mod:`stratify.explain.interventional`, stratify's float64 closed form for
interventional TreeSHAP; :mod:`stratify.explain.forest` is the public entry point
(:func:`forest_shap`); :mod:`stratify.explain.modifier` shows how benefit
depends on the effect modifier and where it changes sign.
"""

from stratify.explain.forest import forest_shap
from stratify.explain.modifier import ModifierEffect, modifier_effect
from stratify.explain.trees import TreeModel, explain_trees, tree_model

__all__ = [
    "ModifierEffect",
    "TreeModel",
    "explain_trees",
    "forest_shap",
    "modifier_effect",
    "tree_model",
]
