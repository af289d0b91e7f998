"""Trial data: validated in-memory trials, file loading, bundled datasets, simulators."""

from stratify.data.trial_data import TRUTH_COLUMNS, TrialData

__all__ = ["TRUTH_COLUMNS", "TrialData"]
