"""Optimization for a target: graph optimization (``edgeship optimize``) and session
tuning measured on the device (``edgeship tune``), whose pick each target stores per
model (:mod:`edgeship.targets.settings`)."""

from __future__ import annotations

from edgeship.optimize._graph import OptimizeConfig, optimize
from edgeship.optimize._policy import LEVELS, RuntimeFacts, allowed_level
from edgeship.optimize._report import Measurement, OptimizeReport, StepRecord, Trial, TuneReport
from edgeship.optimize.tune import TuneConfig, tune

__all__ = [
    "LEVELS",
    "Measurement",
    "OptimizeConfig",
    "OptimizeReport",
    "RuntimeFacts",
    "StepRecord",
    "Trial",
    "TuneConfig",
    "TuneReport",
    "allowed_level",
    "optimize",
    "tune",
]
