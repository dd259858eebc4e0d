"""Optimization for a target: graph optimization (``edgeship optimize``) and session
tuning measured on the device (``edgeship tune``), whose pick is stored per model."""

from __future__ import annotations

from .graph import OptimizeConfig, optimize
from .policy import LEVELS, RuntimeFacts, allowed_level
from .report import Measurement, OptimizeReport, StepRecord, Trial, TuneReport
from .settings import (
    LocalSettingsStore,
    RemoteSettingsStore,
    StoredSettings,
    settings_store,
    stored_settings,
    with_stored_settings,
)
from .tune import TuneConfig, tune

__all__ = [
    "LEVELS",
    "LocalSettingsStore",
    "Measurement",
    "OptimizeConfig",
    "OptimizeReport",
    "RemoteSettingsStore",
    "RuntimeFacts",
    "StepRecord",
    "StoredSettings",
    "Trial",
    "TuneConfig",
    "TuneReport",
    "allowed_level",
    "optimize",
    "settings_store",
    "stored_settings",
    "tune",
    "with_stored_settings",
]
