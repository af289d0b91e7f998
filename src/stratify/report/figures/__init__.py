"""Figures of the trial (:mod:`.trial`), of benefit (:mod:`.benefit`), of SHAP (:mod:`.explain`)."""
