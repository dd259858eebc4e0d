"""Recipes: several named variants of one model made in one go, and their comparison table.

A recipe is TOML (the full format, every key: ``docs/recipes.md``; a working example:
``docs/variants.toml``)::

    [options]                 # optional: latency threads, rounds, runs
    threads = 1

    [variants.int8]
    method = "int8-static"
    calibration = "entropy"

    [variants.slim-int8]      # a chain: each step works on the previous step's output
    chain = [
      { method = "prune-channels", sparsity = 0.5, epochs = 3 },
      { method = "int8-static" },
    ]

Every variant is written to ``DIR/<name>.onnx`` (``.tflite`` for a quantized TFLite model)
with its report ``DIR/<name>.json``; the table goes to ``DIR/table.json`` and
``DIR/table.md``. A variant that fails is recorded with its error and the others go on.
All variants are verified and timed on one target, in one runtime session. Data is
needed only when a variant needs it (calibration, data-driven importance, training).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeship.compress import _evaluate as evaluate
from edgeship.compress._api import CompressOptions, compress
from edgeship.compress._data import DataLike, load_dataset
from edgeship.compress._source import base_format
from edgeship.compress.config import (
    LATENCY_SECONDS,
    AnyConfig,
    config_from_dict,
    data_needs,
    output_format,
)
from edgeship.compress.guard import GuardPolicy
from edgeship.compress.report import CompressionReport, shapes_text, speed_text
from edgeship.core.config import ConnectOptions
from edgeship.core.errors import CompressionError, InputError, UsageError, VerificationError
from edgeship.models.estimate import Interval, share_text
from edgeship.targets import Target
from edgeship_runtime.formats import get_format

if TYPE_CHECKING:
    from edgeship.compress.training.loop import EpochProgress

__all__ = [
    "TABLE_SCHEMA",
    "Progress",
    "Recipe",
    "RecipeReport",
    "RecipeResult",
    "RecipeTable",
    "Row",
    "load_recipe",
    "recipe_from_dict",
    "run_recipe",
]

TABLE_SCHEMA = "edgeship.compression-table/1.1"
"""1.1 added each row's ``samples`` and the Wilson intervals of its shares (``*_ci``)."""
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True)
class Recipe:
    """Variants and options; ``allow_degraded`` keeps collapsed, larger or slower variants
    (noted), ``shapes`` fill dynamic dims where no data gives them (see
    :class:`CompressOptions`) and ``output_kinds`` set the kind of outputs by name
    (``--output-kind``; the others' are inferred)."""

    variants: tuple[tuple[str, AnyConfig], ...]
    threads: int = 1
    latency_rounds: int = 3
    latency_runs: int = 200
    latency_seconds: float = LATENCY_SECONDS
    allow_degraded: bool = False
    shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    output_kinds: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.variants:
            raise UsageError("the recipe lists no variants ([variants.NAME] tables)")
        self.guard()  # the kinds' names, at once
        for name, _ in self.variants:
            if not _NAME.match(name) or name == "base":
                raise UsageError(f"variant name {name!r}: letters, digits, _ . - (not 'base')")

    def guard(self) -> GuardPolicy:
        """The guard every variant is judged by."""
        return GuardPolicy(allow_degraded=self.allow_degraded, output_kinds=self.output_kinds)


def load_recipe(path: Path) -> Recipe:
    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the recipe ({exc})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})") from exc
    return recipe_from_dict(data, str(path))


def recipe_from_dict(data: dict[str, Any], where: str = "recipe") -> Recipe:
    unknown = set(data) - {"variants", "options"}
    if unknown:
        raise UsageError(f"{where}: unknown table(s) {sorted(unknown)}")
    variants = []
    for name, spec in dict(data.get("variants", {})).items():
        try:
            variants.append((name, config_from_dict(spec)))
        except UsageError as exc:
            raise UsageError(f"{where}: variant {name!r}: {exc}") from exc
    options = dict(data.get("options", {}))
    try:
        return Recipe(tuple(variants), **options)
    except TypeError as exc:
        raise UsageError(f"{where}: [options]: {exc}") from exc


@dataclass
class Row:
    """One line of the table. Sizes bytes, accuracy fractions, latency milliseconds.

    ``accuracy`` is against the labels, ``top1_agreement`` against the base's top-1 (the
    base's own row: 1), both over ``samples``, each with its 95 % Wilson interval
    (``*_ci``; None for the base's agreement with itself, which is no estimate)."""

    name: str
    method: str
    path: str = ""
    size_bytes: int = 0
    compressed_size_bytes: int = 0
    parameters: int = 0
    sparsity: float = 0.0
    accuracy: float | None = None
    top1_agreement: float | None = None
    cosine: float | None = None
    max_abs_diff: float | None = None
    latency_ms: float | None = None
    speedup: float | None = None
    error: str | None = None
    samples: int | None = None
    accuracy_ci: Interval | None = None
    top1_agreement_ci: Interval | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Row:
        cis = {k: None if data.get(k) is None else Interval(**data[k]) for k in _CIS}
        return cls(**{**data, **cis})


_CIS = ("accuracy_ci", "top1_agreement_ci")


@dataclass
class RecipeReport:
    """Every variant of one model against its base, as a table (``table.json``)."""

    model: str
    rows: list[Row] = field(default_factory=list)
    schema: str = TABLE_SCHEMA
    input_shapes: dict[str, list[int]] = field(default_factory=dict)
    """The inputs the latencies were measured on (batch 1), by name."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "model": self.model,
            "input_shapes": self.input_shapes,
            "rows": [asdict(r) for r in self.rows],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RecipeReport:
        return cls(
            str(data["model"]),
            [Row.from_dict(r) for r in data["rows"]],
            str(data["schema"]),
            {k: list(v) for k, v in data.get("input_shapes", {}).items()},
        )

    def to_markdown(self) -> str:
        measured = f"p50 ms at batch 1 on {shapes_text(self.input_shapes)}\n\n"
        return (measured if self.input_shapes else "") + self._table() + _SHARES_NOTE

    def _table(self) -> str:
        head = [
            "variant",
            "method",
            "size KB",
            "deflated KB",
            "params",
            "sparsity",
            "accuracy (vs labels)",
            "agreement (vs base)",
            "cosine",
            "max abs diff",
            "p50 ms",
            "speed",
        ]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in self.rows:
            if r.error:
                lines.append(f"| {r.name} | {r.method} | error: {r.error} |" + " |" * 9)
                continue
            cells = [
                r.name,
                r.method,
                f"{r.size_bytes / 1024:.1f}",
                f"{r.compressed_size_bytes / 1024:.1f}",
                f"{r.parameters:,}",
                f"{r.sparsity:.1%}",
                _share(r.accuracy, r.samples, r.accuracy_ci),
                _share(r.top1_agreement, r.samples, r.top1_agreement_ci),
                _num(r.cosine, ".4f"),
                _num(r.max_abs_diff, ".4g"),
                _num(r.latency_ms, ".4f"),
                "-" if r.speedup is None else speed_text(r.speedup),
            ]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"


_SHARES_NOTE = (
    "\naccuracy: top-1 against the labels; agreement: top-1 against the base's; "
    "[low, high]: the 95 % Wilson interval over the n samples judged.\n"
)


def _share(v: float | None, n: int | None, ci: Interval | None) -> str:
    """``96.7 % [94.8, 97.9] n=540``; a figure without an interval (the base's agreement
    with itself, a table written before intervals) as a bare percentage."""
    return "-" if v is None else share_text(v, n if ci is not None else None, ci)


def _num(v: float | None, fmt: str, unit: str = "") -> str:
    return "-" if v is None else f"{v:{fmt}}{unit}"


RecipeTable = RecipeReport
"""The former name of :class:`RecipeReport` (an alias)."""


@dataclass
class RecipeResult:
    """What :func:`run_recipe` returns: the directory written and the table's report."""

    directory: Path
    report: RecipeReport


Progress = Callable[[int, int, str], None]
"""Called before each variant with (index, total, name) and at the end with (total, total, '')."""


def run_recipe(
    model: Any,
    recipe: Recipe,
    data: DataLike | None,
    out_dir: Path,
    target: str | Target = "local",
    progress: Progress | None = None,
    connect: ConnectOptions | None = None,
    eval_data: DataLike | None = None,
    on_epoch: EpochProgress | None = None,
    on_step: Callable[[str], None] | None = None,
) -> RecipeResult:
    """Make every variant of ``model`` into ``out_dir``, each verified and timed against
    the base on ``target`` (a spec is opened once, with ``connect``, for all of them) and
    measured on ``eval_data`` or held-out data (see :func:`compress`). ``progress`` hears
    of each variant as it starts, ``on_epoch`` of a training variant's epochs, ``on_step``
    of each variant's steps (see :class:`CompressOptions`)."""
    dataset, evalset = load_dataset(data, model), load_dataset(eval_data, model)
    if dataset is None:
        _no_data_needed(recipe)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = RecipeReport(model=str(getattr(model, "factory", model)))
    reports: list[CompressionReport] = []
    total = len(recipe.variants)
    with evaluate.opened(target, connect) as tgt:
        options = CompressOptions(
            target=tgt,
            latency=True,
            threads=recipe.threads,
            latency_rounds=recipe.latency_rounds,
            latency_runs=recipe.latency_runs,
            latency_seconds=recipe.latency_seconds,
            shapes=recipe.shapes,
            guard=recipe.guard(),
            on_epoch=on_epoch,
            on_step=on_step,
        )
        for i, (name, config) in enumerate(recipe.variants):
            if progress:
                progress(i, total, name)
            out = out_dir / f"{name}{_suffix(model, config)}"
            try:
                result = compress(model, config, dataset, out, options, eval_data=evalset)
            except (CompressionError, InputError, VerificationError) as exc:
                report.rows.append(Row(name=name, method=config.method, error=str(exc)))
                continue
            (out_dir / f"{name}.json").write_text(result.report.to_json() + "\n")
            reports.append(result.report)
            report.rows.append(_row(name, result.report))
            if result.report.latency is not None and not report.input_shapes:
                report.input_shapes = dict(result.report.latency.input_shapes)
    if progress:
        progress(total, total, "")
    if reports:
        report.rows.insert(0, _base_row(reports))
    (out_dir / "table.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    (out_dir / "table.md").write_text(report.to_markdown())
    return RecipeResult(out_dir, report)


def _no_data_needed(recipe: Recipe) -> None:
    """Without data, refuse at once a recipe whose variants need it (naming them)."""
    needing = {name: data_needs(config) for name, config in recipe.variants}
    listed = [f"{name} ({', '.join(why)})" for name, why in needing.items() if why]
    if listed:
        raise UsageError(f"variants {'; '.join(listed)} need data: give --data D.npz")


def _suffix(model: Any, config: AnyConfig) -> str:
    return get_format(output_format(config, base_format(model))).suffix


def _row(name: str, rec: CompressionReport) -> Row:
    fid, lat = rec.fidelity, rec.latency
    return Row(
        name=name,
        method=rec.method,
        path=rec.model.path,
        size_bytes=rec.model.size_bytes,
        compressed_size_bytes=rec.model.compressed_size_bytes,
        parameters=rec.model.parameters,
        sparsity=round(rec.model.sparsity, 6),
        accuracy=None if fid is None else fid.accuracy,
        top1_agreement=None if fid is None else fid.top1_agreement,
        cosine=None if fid is None else fid.cosine,
        max_abs_diff=None if fid is None else fid.max_abs_diff,
        latency_ms=None if lat is None else lat.model_p50_ms,
        speedup=None if lat is None else lat.speedup,
        samples=None if fid is None else fid.samples,
        accuracy_ci=None if fid is None else fid.accuracy_ci,
        top1_agreement_ci=None if fid is None else fid.top1_agreement_ci,
    )


def _base_row(records: list[CompressionReport]) -> Row:
    """The base, measured in every variant's run: its median latency across them."""
    import statistics

    base = records[0].base
    lats = [r.latency.base_p50_ms for r in records if r.latency is not None]
    fid = records[0].fidelity
    return Row(
        name="base",
        method="-",
        path=base.path,
        size_bytes=base.size_bytes,
        compressed_size_bytes=base.compressed_size_bytes,
        parameters=base.parameters,
        sparsity=round(base.sparsity, 6),
        accuracy=None if fid is None else fid.base_accuracy,
        top1_agreement=None if fid is None or fid.top1_agreement is None else 1.0,
        cosine=None if fid is None else 1.0,
        max_abs_diff=None if fid is None else 0.0,
        latency_ms=statistics.median(lats) if lats else None,
        speedup=1.0 if lats else None,
        samples=None if fid is None else fid.samples,
        accuracy_ci=None if fid is None else fid.base_accuracy_ci,
    )
