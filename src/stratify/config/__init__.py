"""Experiment configs: the typed schema (:mod:`.schema`) and how YAML files become one
(:mod:`.loader`). Configs are plain data: they never name code to import or run."""

from stratify.config.loader import apply_override, load_config, project_root, validate_config
from stratify.config.schema import (
    CVConfig,
    DataConfig,
    ExecutionConfig,
    ExperimentConfig,
    ExplainConfig,
    HeterogeneityConfig,
    LearnerSpec,
    SimulateConfig,
    TrackingConfig,
    is_local_folder,
)

__all__ = [
    "CVConfig",
    "DataConfig",
    "ExecutionConfig",
    "ExperimentConfig",
    "ExplainConfig",
    "HeterogeneityConfig",
    "LearnerSpec",
    "SimulateConfig",
    "TrackingConfig",
    "apply_override",
    "is_local_folder",
    "load_config",
    "project_root",
    "validate_config",
]
