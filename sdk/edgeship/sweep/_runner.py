"""The driver of a sweep: plan, hand work to an executor, store results as they arrive.

Variants whose stored record still holds are not made again; the others go to the
executor as compression tasks at once. As each variant is made (or found), its cells are
planned against the store and the missing or failed ones go to the boards; compression
and measurement overlap. Every result is written the moment it arrives, so a sweep
stopped at any point resumes where it stopped (see :mod:`.plan`). At the end the report
(:class:`~.report.SweepReport`) is built from this run's cells and written beside them.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeship.compress import Recipe, load_recipe
from edgeship.compress.config import AnyConfig, data_needs, output_format
from edgeship.core.config import ConnectOptions
from edgeship.core.errors import ModelError, UsageError
from edgeship.core.hashing import file_sha256
from edgeship.models.model_file import ModelFile
from edgeship.sweep import _plan as plan
from edgeship.sweep._executor import Executor, open_executor
from edgeship.sweep._fronts import across_boards, board_front
from edgeship.sweep._report import (
    DONE,
    FAILED,
    Cell,
    CellRecord,
    ErrorInfo,
    Policy,
    RunCounts,
    SweepReport,
    VariantRecord,
)
from edgeship.sweep._report_html import all_plots
from edgeship.sweep._report_html import render as render_html
from edgeship.sweep._store import Store
from edgeship.sweep._work import CompressJob, MeasureJob, VariantOutcome, ab_config, now_utc
from edgeship.sweep.view import to_markdown
from edgeship.targets import open_targets
from edgeship_runtime.formats import get_format

__all__ = ["REUSED", "OnEvent", "SweepConfig", "SweepEvent", "board_names", "run_sweep"]

REUSED = "reused"


@dataclass(frozen=True)
class SweepConfig:
    """One sweep: ``model`` (.onnx/.tflite) made into the ``recipe``'s variants, each
    A/B'd against it on every board ``targets`` names; results under ``out``.

    ``data``: for the variants that calibrate or train (and host-side accuracy);
    ``eval_data``: inputs with labels run on the boards for on-device accuracy;
    ``policy``: how each cell is measured (its ``threads`` default to the recipe's).
    """

    model: Path
    recipe: Path
    targets: str
    out: Path
    data: Path | None = None
    eval_data: Path | None = None
    policy: Policy | None = None
    connect: ConnectOptions = field(default_factory=ConnectOptions)

    def __post_init__(self) -> None:
        for name in ("model", "recipe", "out", "data", "eval_data"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))
        if self.policy is not None:
            ab_config(self.policy, None)  # the A/B's own checks (sessions, runs), at once


@dataclass(frozen=True)
class SweepEvent:
    """Something finished: ``kind`` ``variant`` or ``cell`` (``board`` set), ``status``
    done, failed or reused; ``done``/``total`` count cells."""

    kind: str
    variant: str
    status: str
    board: str | None = None
    record: VariantRecord | Cell | None = None
    done: int = 0
    total: int = 0


OnEvent = Callable[[SweepEvent], None]


def run_sweep(
    config: SweepConfig, executor: Executor | None = None, on_event: OnEvent | None = None
) -> SweepReport:
    """Run (or resume) the sweep; write and return its report. ``executor``: None for the
    default (:func:`~.executor.open_executor`), opened and closed here; one given is the
    caller's to close."""
    started = time.monotonic()
    recipe = load_recipe(config.recipe)
    _check_inputs(config, recipe)
    policy = config.policy or Policy(threads=recipe.threads)
    boards = board_names(config.targets, config.connect)
    with contextlib.ExitStack() as stack:
        if executor is None:
            executor = stack.enter_context(open_executor(None, config.connect, boards=len(boards)))
        run = _Run(config, recipe, policy, boards, Store(config.out), executor, on_event)
        run.go()
    run.counts.wall_s = round(time.monotonic() - started, 3)
    report = run.report()
    run.store.write_text(run.store.root / "sweep.json", report.to_json() + "\n")
    run.store.write_text(run.store.root / "sweep.md", to_markdown(report))
    run.store.write_text(run.store.root / "sweep.html", render_html(report, all_plots(report)))
    return report


def board_names(targets: str, connect: ConnectOptions) -> list[str]:
    """The boards ``targets`` names (a group, a device, a comma list), each once, in order;
    none is contacted."""
    return list(dict.fromkeys(t.name for t in open_targets(targets, connect)))


def _check_inputs(config: SweepConfig, recipe: Recipe) -> None:
    """Refuse at once what cannot work: no model file, missing data that variants need."""
    if not config.model.is_file():
        raise ModelError(f"{config.model}: no such model file", path=str(config.model))
    ModelFile.of(config.model)  # ModelError for an unknown format
    for path in (config.data, config.eval_data):
        if path is not None and not path.is_file():
            raise UsageError(f"{path}: no such data file")
    if config.data is None:
        needing = {name: data_needs(c) for name, c in recipe.variants}
        listed = [f"{name} ({', '.join(why)})" for name, why in needing.items() if why]
        if listed:
            raise UsageError(f"variants {'; '.join(listed)} need data: give --data D.npz")


class _Run:
    """One run of a sweep: what is pending with the executor and what has come back."""

    def __init__(
        self,
        config: SweepConfig,
        recipe: Recipe,
        policy: Policy,
        boards: list[str],
        store: Store,
        executor: Executor,
        on_event: OnEvent | None,
    ) -> None:
        self.config, self.recipe, self.policy, self.boards = config, recipe, policy, boards
        self.store, self.executor, self.on_event = store, executor, on_event
        self.base_sha = file_sha256(config.model)
        self.data_sha = None if config.data is None else file_sha256(config.data)
        self.eval_sha = None if config.eval_data is None else file_sha256(config.eval_data)
        self.pending: dict[Future[Any], CompressJob | MeasureJob] = {}
        self.variants: dict[str, VariantRecord] = {}
        self.cells: dict[tuple[str, str], Cell] = {}
        self.counts = RunCounts()
        self.total = len(recipe.variants) * len(boards)

    def go(self) -> None:
        for name, variant in self.recipe.variants:
            job = self._compress_job(name, variant)
            stored = self.store.variant(name)
            if plan.variant_reusable(stored, job.fingerprint, self.store.model_sha256(stored)):
                assert stored is not None
                self.counts.variants_reused += 1
                self._variant_ready(stored, REUSED)
            else:
                self.pending[self.executor.compress(job)] = job
        while self.pending:
            finished, _ = wait(self.pending, return_when=FIRST_COMPLETED)
            for future in finished:
                work = self.pending.pop(future)
                if isinstance(work, CompressJob):
                    self._made(work, future.result())
                else:
                    self._measured(future.result())

    # -- variants --------------------------------------------------------------

    def _compress_job(self, name: str, variant: AnyConfig) -> CompressJob:
        fmt = output_format(variant, ModelFile.of(self.config.model).format)
        out = self.store.model_path(name, get_format(fmt).suffix)
        return CompressJob(
            variant=name,
            config=variant,
            base=self.config.model,
            data=self.config.data,
            out=out,
            path=self.store.relative(out),
            fingerprint=plan.variant_fingerprint(self.base_sha, variant, self.data_sha),
            resources=plan.resources_for(variant),
            guard=self.recipe.guard(),
        )

    def _made(self, job: CompressJob, outcome: VariantOutcome) -> None:
        record = outcome.record
        if outcome.model_bytes is not None:  # made elsewhere: its bytes came back
            self.store.write_bytes(job.out, outcome.model_bytes)
        if outcome.report_json is not None:
            report = json.loads(outcome.report_json)
            report["model"]["path"] = str(job.out)
            path = self.store.compression_report_path(job.variant)
            self.store.write_text(path, json.dumps(report, indent=2) + "\n")
        if record.ok and file_sha256(job.out) != record.sha256:
            record.status, record.error = FAILED, ErrorInfo("StoreError", f"{job.out} changed")
        self.store.write_variant(record)
        self.counts.compressed += 1
        self._variant_ready(record, record.status)

    def _variant_ready(self, record: VariantRecord, status: str) -> None:
        self.variants[record.name] = record
        self._emit(SweepEvent("variant", record.name, status, record=record))
        if not record.ok:
            return
        fingerprints = {
            b: plan.cell_fingerprint(self.base_sha, record.sha256, b, self.policy, self.eval_sha)
            for b in self.boards
        }
        stored = {b: self.store.cell(record.name, b) for b in self.boards}
        cells = plan.plan_cells(record, self.boards, stored, fingerprints)
        for board in cells.reused:
            found = stored[board]
            assert found is not None
            found.cell.file = self.store.relative(self.store.cell_path(record.name, board))
            self.counts.cells_reused += 1
            self._cell_ready(found.cell, REUSED)
        for board in cells.todo:
            job = MeasureJob(
                variant=record.name,
                board=board,
                base=self.config.model,
                model=self.store.root / record.path,
                fingerprint=fingerprints[board],
                policy=self.policy,
                eval_data=self.config.eval_data,
            )
            self.pending[self.executor.measure(job)] = job

    # -- cells -----------------------------------------------------------------

    def _measured(self, record: CellRecord) -> None:
        self.store.write_cell(record)
        self.counts.measured += 1
        self._cell_ready(record.cell, record.cell.status)

    def _cell_ready(self, cell: Cell, status: str) -> None:
        self.cells[(cell.variant, cell.board)] = cell
        done = len(self.cells)
        self._emit(SweepEvent("cell", cell.variant, status, cell.board, cell, done, self.total))

    def _emit(self, event: SweepEvent) -> None:
        if self.on_event is not None:
            self.on_event(event)

    # -- the report ------------------------------------------------------------

    def report(self) -> SweepReport:
        variants = [self.variants[name] for name, _ in self.recipe.variants]
        cells = [self._cell(v, b) for v in variants for b in self.boards]
        return SweepReport(
            model=str(self.config.model),
            model_sha256=self.base_sha,
            recipe=str(self.config.recipe),
            executor=self.executor.name,
            policy=self.policy,
            boards=self.boards,
            variants=variants,
            cells=cells,
            fronts=[board_front(b, cells) for b in self.boards],
            across=across_boards(self.boards, variants, cells),
            run=self.counts,
            created_at=now_utc(),
            eval_data=None if self.config.eval_data is None else str(self.config.eval_data),
            complete=all(c.status == DONE for c in cells),
        )

    def _cell(self, variant: VariantRecord, board: str) -> Cell:
        cell = self.cells.get((variant.name, board))
        if cell is not None:
            return cell
        why = variant.error or ErrorInfo("CompressionError", "the variant was not made")
        message = f"variant {variant.name} was not made: {why.type}: {why.message}"
        return Cell(variant.name, board, FAILED, error=ErrorInfo(why.type, message))
