"""The fixed registry of learners that configs name, and the one way to build them.

Configs list learners by name with optional parameters; :func:`make_learner`
turns a name into an estimator, checks the parameters' names against the
learner's own (``get_params``) and their values against its constraints
table (:mod:`stratify.learners.params`), and injects what the experiment
decides rather than the user: the seed (``random_state``), the biomarker
(``modifier``) and the ``horizon``. Learners are never imported from paths
given in configs.
"""

from __future__ import annotations

from stratify.exceptions import StratifyInputError
from stratify.learners.base import CATELearner, check_learner_params
from stratify.learners.causal_survival_forest import CausalSurvivalForest
from stratify.learners.cox import CoxInteraction, CoxnetInteraction
from stratify.learners.dr import DRLearner
from stratify.learners.meta import SLearner, TLearner

#: Learners by the name configs use.
LEARNERS: dict[str, type[CATELearner]] = {
    "s_learner": SLearner,
    "t_learner": TLearner,
    "coxnet_interaction": CoxnetInteraction,
    "dr_learner": DRLearner,
    "cox_interaction": CoxInteraction,
    "causal_survival_forest": CausalSurvivalForest,
}

#: Parameters set by the experiment, never by a config's learner parameters.
INJECTED = {
    "random_state": "the experiment's seed",
    "modifier": "data.modifier",
    "horizon": "the experiment's horizon",
}


def make_learner(
    name: str,
    params: dict | None = None,
    *,
    random_state: int | None,
    modifier: str | None,
    horizon: float,
) -> CATELearner:
    """Build a learner from its registry name and parameters.

    Parameters
    ----------
    name : str
        A key of :data:`LEARNERS`.
    params : dict, optional
        Parameters of the learner (see its docstring), e.g.
        ``{"base": "gbsa"}`` for ``"t_learner"``, or for a forest on a large
        cohort ``{"time_grid": 100, "base_params": {"max_samples": 0.2,
        "min_samples_leaf": 50, "n_jobs": 2}}``.
    random_state : int or None
        Seed, given to learners that take one.
    modifier : str or None
        Biomarker column, given to learners that take one (required by
        ``"cox_interaction"``; ``"causal_survival_forest"`` uses it for its local
        linear correction when given).
    horizon : float
        Horizon in days, given to every learner: the horizon its
        ``predict_cate`` estimates effects at (and the one it is fitted for:
        ``"dr_learner"``, ``"causal_survival_forest"``; the one a
        ``time_grid`` contains: ``"s_learner"``, ``"t_learner"``).

    Returns
    -------
    CATELearner
        An unfitted learner.

    Raises
    ------
    StratifyInputError
        One line naming the unknown learner or parameter with the valid
        choices, a missing modifier, or an invalid parameter value.

    Examples
    --------
    >>> make_learner("t_learner", {"base": "gbsa"}, random_state=0, modifier=None, horizon=640)
    TLearner(base='gbsa', horizon=640, random_state=0)
    """
    if name not in LEARNERS:
        valid = ", ".join(LEARNERS)
        raise StratifyInputError(f"unknown learner {name!r}; valid learners: {valid}")
    cls = LEARNERS[name]
    own = cls().get_params(deep=False)
    params = dict(params or {})
    for key in params:
        if key in INJECTED and key in own:
            raise StratifyInputError(
                f"learner {name!r}: {key!r} comes from {INJECTED[key]}, not from its params"
            )
        if key not in own:
            valid = ", ".join(p for p in own if p not in INJECTED) or "none"
            raise StratifyInputError(
                f"unknown parameter {key!r} for learner {name!r}; valid parameters: {valid}"
            )
    injected = {"random_state": random_state, "modifier": modifier, "horizon": horizon}
    learner = cls(**params, **{k: v for k, v in injected.items() if k in own})
    if "modifier" in own and modifier is None and getattr(cls, "needs_modifier", True):
        raise StratifyInputError(
            f"learner {name!r} needs data.modifier: the biomarker whose interaction with the arm "
            "is pre-specified"
        )
    try:
        check_learner_params(learner)
    except StratifyInputError as err:
        raise StratifyInputError(f"learner {name!r}: {err}") from None
    return learner
