"""The title, the one-sentence lead and the key findings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stratify.report.document import escape
from stratify.report.summary import finding, overall, verdict

if TYPE_CHECKING:
    from stratify.report.run import RunResult


def header(run: RunResult, headline: str | None = None) -> str:
    """Title, subtitle, the one-sentence finding and the key findings.

    ``headline`` replaces the lead sentence; default: the modifier finding when
    there is one, else the overall treatment effect.
    """
    a, data = run.analysis, run.data
    control, treated = a.arm_labels
    subtitle = (
        f"Randomised survival trial, {treated} (treated) vs {control} (control): "
        f"{data.n_patients} patients, "
        f"{data.n_events} events, horizon {run.horizon_text} days"
    )
    effect = overall(run)
    found = "" if run.explained is None else finding(run.explained)
    stated = "" if run.evaluation is None else verdict(run.evaluation, a.alpha, data.n_patients)
    lead = headline or found or effect
    findings = [f for f in (effect, stated, found) if f]
    items = "".join(f"<li>{escape(f)}</li>" for f in findings if f != lead)
    out = f"<h1>{escape(run.config.name)}: who benefits?</h1>"
    out += f'<p class="subtitle">{escape(subtitle)}</p><p class="lead">{escape(lead)}</p>'
    return out + (f'<ul class="findings">{items}</ul>' if items else "")


__all__ = ["header"]
