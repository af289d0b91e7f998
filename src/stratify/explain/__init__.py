"""Explaining benefit: exact SHAP for survival forests and learners, and the modifier's role.

:mod:`stratify.explain.trees` hands scikit-survival's trees to shap's exact
TreeSHAP; :mod:`stratify.explain.forest` is its public entry point
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
