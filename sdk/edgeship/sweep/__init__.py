"""Sweeps: every variant of a recipe, made and A/B'd against the base on every board.

    from edgeship.sweep import SweepConfig, run_sweep

    config = SweepConfig("cnn.onnx", "variants.toml", "lab", "sweep-out",
                         data="train.npz", eval_data="test.npz")
    report = run_sweep(config)             # SweepReport (edgeship.sweep/1.1), also in sweep-out/
    report.across.front                    # the variants no other beats on every objective

Variants are made as compression tasks and measured by whoever holds each board, one cell
at a time per board, through an :class:`~.executor.Executor`: on threads here, or on Ray
(``edgeship[ray]``) where it pays: asked for, a cluster joined, or more boards than the
threads measure at once; the report is the same either way. Every result is stored as
it arrives, and a re-run does only what is missing or failed. How to run one: ``docs/sweeps.md``.

Modules: :mod:`.plan` (fingerprints, what to redo; pure), :mod:`.store` (the directory),
:mod:`.work` (the two jobs), :mod:`.executor` with :mod:`.local_executor` and
:mod:`.ray_executor`, :mod:`.runner` (the driver), :mod:`.report` (the typed records),
:mod:`.fronts` (Pareto fronts), :mod:`.view` (the tables' rows, Markdown),
:mod:`.report_html` (HTML).
"""

from __future__ import annotations

from edgeship.sweep._executor import Executor, open_executor, ray_installed
from edgeship.sweep._local_executor import LocalExecutor
from edgeship.sweep._plan import Resources
from edgeship.sweep._report import (
    CELL_SCHEMA,
    SWEEP_SCHEMA,
    VARIANT_SCHEMA,
    Cell,
    CellRecord,
    CellResult,
    Policy,
    SweepReport,
    VariantRecord,
)
from edgeship.sweep._runner import SweepConfig, SweepEvent, board_names, run_sweep
from edgeship.sweep.view import to_markdown

__all__ = [
    "CELL_SCHEMA",
    "SWEEP_SCHEMA",
    "VARIANT_SCHEMA",
    "Cell",
    "CellRecord",
    "CellResult",
    "Executor",
    "LocalExecutor",
    "Policy",
    "Resources",
    "SweepConfig",
    "SweepEvent",
    "SweepReport",
    "VariantRecord",
    "board_names",
    "open_executor",
    "ray_installed",
    "run_sweep",
    "to_markdown",
]
