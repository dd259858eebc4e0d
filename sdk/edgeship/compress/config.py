"""What each compression method is asked to do: frozen, validated once in ``__post_init__``.

One config type per method (the registry in :mod:`.methods` maps method names to them);
each says what it needs data for (:meth:`needs_data`). :func:`config_from_dict` builds
any of them from the flat ``{"method": ..., key: value}`` form that recipes and the CLI
use, through the registry.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from edgeship.compress.methods import MethodConfig, get_method, method_for, method_names
from edgeship.core.errors import UsageError

LATENCY_SECONDS = 0.2
"""Timed running per model in each latency round, at least: a round's p50 of a 25 µs
model is then ~8,000 runs, not ``latency_runs`` (5 ms, one preemption's length)."""

__all__ = [
    "CALIBRATIONS",
    "CHANNEL_IMPORTANCES",
    "LATENCY_SECONDS",
    "QUANT_METHODS",
    "SCOPES",
    "WEIGHT_IMPORTANCES",
    "AnyConfig",
    "ChainConfig",
    "ChannelPruneConfig",
    "DistillConfig",
    "PruneConfig",
    "QuantizeConfig",
    "TrainConfig",
    "config_from_dict",
    "config_to_dict",
    "data_needs",
    "data_used",
    "fine_tuning",
    "output_format",
    "steps_of",
]

QUANT_METHODS = ("int8-dynamic", "int8-static", "fp16")
CALIBRATIONS = ("minmax", "entropy", "percentile")
WEIGHT_IMPORTANCES = ("magnitude", "gradient", "perturbation")
CHANNEL_IMPORTANCES = ("l1", "l2", "activation", "perturbation")
SCOPES = ("global", "layer")


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise UsageError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def _fraction(name: str, value: float, *, low_open: bool = False) -> None:
    ok = (0.0 < value < 1.0) if low_open else (0.0 <= value < 1.0)
    if not ok:
        interval = "(0, 1)" if low_open else "[0, 1)"
        raise UsageError(f"{name} must be in {interval}; got {value}")


def _positive(name: str, value: float | int) -> None:
    if value <= 0:
        raise UsageError(f"{name} must be positive; got {value}")


@dataclass(frozen=True)
class TrainConfig:
    """Training for fine-tuning and distillation.

    The loss is ``alpha · T² · KL(student/T ‖ teacher/T) + (1 − alpha) · CE(labels)``; with
    no labels it is the KL term alone, with no teacher the CE alone. ``epochs`` is a
    ceiling: training stops early once the held-out metric (accuracy on labels, else top-1
    agreement with the teacher) reaches ``target_accuracy`` or ``max_seconds`` have passed.
    """

    epochs: int = 0
    lr: float = 1e-3
    batch_size: int = 32
    temperature: float = 4.0
    alpha: float = 0.5
    target_accuracy: float | None = None
    max_seconds: float | None = None
    val_fraction: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 0:
            raise UsageError(f"epochs must be >= 0; got {self.epochs}")
        _positive("lr", self.lr)
        _positive("batch_size", self.batch_size)
        _positive("temperature", self.temperature)
        if not 0.0 <= self.alpha <= 1.0:
            raise UsageError(f"alpha must be in [0, 1]; got {self.alpha}")
        if self.target_accuracy is not None and not 0.0 < self.target_accuracy <= 1.0:
            raise UsageError(f"target_accuracy must be in (0, 1]; got {self.target_accuracy}")
        if self.max_seconds is not None:
            _positive("max_seconds", self.max_seconds)
        _fraction("val_fraction", self.val_fraction)


def fine_tuning() -> TrainConfig:
    """Pruning's fine-tuning defaults: batches of 8, since ``--data`` for it often holds
    tens of rows and batches of 32 would leave the optimiser a step or two per epoch."""
    return TrainConfig(batch_size=8)


@dataclass(frozen=True)
class QuantizeConfig:
    """ONNX: dynamic INT8, static INT8 (QDQ, calibrated) or FP16 with float32 I/O.

    TFLite: ``int8-dynamic`` (dynamic range) and ``int8-static`` (full INT8, calibrated).
    ``percentile`` is used by the ``percentile`` calibration only. ONNX INT8:
    ``reduce_range`` quantizes weights to 7 bits (x86 CPUs without VNNI saturate 8-bit
    products; ``False`` for ARM or VNNI boards only); ``fallback`` keeps the nodes that
    collapse the model in float (:mod:`.fallback`); fp16: those whose activations leave
    float16's range on the search inputs. ``int8_io``: TFLite ``int8-static``
    only, int8 inputs and outputs (default: float ones, quantized and dequantized inside
    the model, so that callers feeding float32 keep working).
    """

    method: str = "int8-static"
    calibration: str = "minmax"
    per_channel: bool = True
    exclude_nodes: tuple[str, ...] = ()
    exclude_op_types: tuple[str, ...] = ()
    calibration_samples: int = 256
    percentile: float = 99.999
    reduce_range: bool = True
    fallback: bool = True
    int8_io: bool = False

    def __post_init__(self) -> None:
        _choice("quantization method", self.method, QUANT_METHODS)
        if self.int8_io and self.method != "int8-static":
            raise UsageError(f"int8 inputs and outputs need int8-static, not {self.method}")
        _choice("calibration", self.calibration, CALIBRATIONS)
        _positive("calibration_samples", self.calibration_samples)
        if not 50.0 < self.percentile <= 100.0:
            raise UsageError(f"percentile must be in (50, 100]; got {self.percentile}")
        object.__setattr__(self, "exclude_nodes", tuple(self.exclude_nodes))
        object.__setattr__(self, "exclude_op_types", tuple(self.exclude_op_types))

    def needs_data(self) -> str | None:
        return "static INT8 calibration" if self.method == "int8-static" else None

    def uses_data(self) -> bool:
        """Whether data, when given, is used (the fallback's search counts): then a part of
        it is held out to judge the result."""
        return self.needs_data() is not None or self.fallback


@dataclass(frozen=True)
class PruneConfig:
    """Unstructured weight pruning of Conv/Gemm/MatMul weights.

    ``sparsity`` is the fraction of those weights set to zero, or with
    ``accuracy_budget_pt`` the ceiling of a sweep (in ``step`` increments) that keeps the
    largest sparsity whose accuracy drop stays within the budget (percentage points), or
    with ``sparsity_search`` the ceiling of the search that keeps the largest sparsity
    whose result holds the model on the search inputs, as :class:`ChannelPruneConfig`'s.
    ``samples`` bounds the data used to score gradient/perturbation importance.
    """

    sparsity: float = 0.5
    importance: str = "magnitude"
    scope: str = "global"
    accuracy_budget_pt: float | None = None
    step: float = 0.05
    samples: int = 512
    sparsity_search: bool = False
    fine_tune: TrainConfig = field(default_factory=fine_tuning)
    method: str = field(default="prune", init=False)

    def __post_init__(self) -> None:
        _fraction("sparsity", self.sparsity)
        _choice("importance", self.importance, WEIGHT_IMPORTANCES)
        _choice("scope", self.scope, SCOPES)
        if self.accuracy_budget_pt is not None and self.accuracy_budget_pt < 0:
            raise UsageError(f"accuracy budget must be >= 0 pt; got {self.accuracy_budget_pt}")
        if self.accuracy_budget_pt is not None and self.sparsity_search:
            raise UsageError(
                "give an accuracy budget (a sweep against labels) or the sparsity search "
                "(against the base's outputs), not both"
            )
        _fraction("step", self.step, low_open=True)
        _positive("samples", self.samples)

    def needs_data(self) -> str | None:
        if self.importance != "magnitude":
            return f"{self.importance} importance"
        if self.accuracy_budget_pt is not None:
            return "an accuracy budget"
        return "fine-tuning" if self.fine_tune.epochs > 0 else None

    def uses_data(self) -> bool:
        """Whether data, when given, is used (the sparsity search's counts)."""
        return self.needs_data() is not None or self.sparsity_search


@dataclass(frozen=True)
class ChannelPruneConfig:
    """Structured pruning: remove ``sparsity`` of each prunable layer's channels/neurons.

    ``sparsity_search``: ``sparsity`` is a ceiling; the largest sparsity up to it whose
    result (fine-tuned, when asked) holds the model on the search inputs (rows of the data
    that the final judgement never sees, else generated inputs) is kept
    (:mod:`.pruning.search`). A method of its own, not a step of a chain.
    """

    sparsity: float = 0.5
    importance: str = "l1"
    samples: int = 256
    sparsity_search: bool = False
    fine_tune: TrainConfig = field(default_factory=fine_tuning)
    method: str = field(default="prune-channels", init=False)

    def __post_init__(self) -> None:
        _fraction("sparsity", self.sparsity)
        _choice("importance", self.importance, CHANNEL_IMPORTANCES)
        _positive("samples", self.samples)

    def needs_data(self) -> str | None:
        if self.importance in ("activation", "perturbation"):
            return f"{self.importance} importance"
        return "fine-tuning" if self.fine_tune.epochs > 0 else None

    def uses_data(self) -> bool:
        """Whether data, when given, is used (the sparsity search's counts)."""
        return self.needs_data() is not None or self.sparsity_search


@dataclass(frozen=True)
class DistillConfig:
    """Knowledge distillation into ``student`` (``module:factory``), or into a copy of the
    teacher ``width`` times as wide (every prunable layer keeps that fraction of channels)."""

    student: str | None = None
    width: float = 0.5
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(epochs=30, alpha=0.7, val_fraction=0.2)
    )
    method: str = field(default="distill", init=False)

    def __post_init__(self) -> None:
        _fraction("width", self.width, low_open=True)
        if self.student is not None and ":" not in self.student:
            raise UsageError(f"student must be 'module:factory'; got {self.student!r}")
        if self.train.epochs < 1:
            raise UsageError("distillation needs at least one epoch")

    def needs_data(self) -> str | None:
        return "distillation"


@dataclass(frozen=True)
class ChainConfig:
    """Methods applied in order, each to the previous one's output (e.g. prune, then INT8)."""

    steps: tuple[MethodConfig, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.steps))
        if not self.steps:
            raise UsageError("a chain needs at least one step")
        if any(isinstance(s, ChainConfig) for s in self.steps):
            raise UsageError("chains do not nest")

    @property
    def method(self) -> str:
        return "+".join(s.method for s in self.steps)


AnyConfig = MethodConfig | ChainConfig


def steps_of(config: AnyConfig) -> tuple[MethodConfig, ...]:
    """A chain's steps; a single method's config as a chain of one."""
    return config.steps if isinstance(config, ChainConfig) else (config,)


def data_needs(config: AnyConfig) -> list[str]:
    """What each step needing data needs it for (empty: it runs without data)."""
    return [why for why in (s.needs_data() for s in steps_of(config)) if why is not None]


def data_used(config: AnyConfig) -> bool:
    """Whether a step uses data when given (calibration, training, a search's inputs)."""
    return bool(data_needs(config)) or any(
        isinstance(s, QuantizeConfig | PruneConfig | ChannelPruneConfig) and s.uses_data()
        for s in steps_of(config)
    )


def output_format(config: AnyConfig, fmt: str) -> str:
    """The format ``config`` writes, starting from a ``fmt`` model (a chain: its last step)."""
    for step in steps_of(config):
        fmt = method_for(step).output_format(fmt)
    return fmt


_TRAIN_KEYS = {f.name for f in dataclasses.fields(TrainConfig)}


def config_from_dict(data: Mapping[str, Any]) -> AnyConfig:
    """``{"method": "prune", "sparsity": 0.5, "epochs": 2}`` → a config; ``{"chain": [...]}``
    → a :class:`ChainConfig`. Training keys (``epochs``, ``lr``, ...) are flat."""
    if "chain" in data:
        extra = set(data) - {"chain", "description"}
        if extra:
            raise UsageError(f"a chain takes only 'chain'; unexpected {sorted(extra)}")
        steps = data["chain"]
        if not isinstance(steps, list):
            raise UsageError("'chain' must be a list of steps")
        return ChainConfig(tuple(_one(step) for step in steps))
    return _one(data)


def _one(data: Any) -> MethodConfig:
    if not isinstance(data, Mapping) or "method" not in data:
        raise UsageError(f"each step needs a 'method' (one of {', '.join(method_names())})")
    name = str(data["method"])
    method = get_method(name)
    options = {k: v for k, v in data.items() if k not in ("method", "description")}
    train = {k: options.pop(k) for k in list(options) if k in _TRAIN_KEYS}
    options = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
    fields = {f.name: f for f in dataclasses.fields(method.config)}
    if method.training is None:
        if train:
            raise UsageError(f"{name} does not train; unexpected {sorted(train)}")
    else:
        options[method.training] = dataclasses.replace(_default(fields[method.training]), **train)
    if "method" in fields and fields["method"].init:
        options["method"] = name
    try:
        config: MethodConfig = method.config(**options)
    except TypeError as exc:
        raise UsageError(f"{name}: {exc}") from exc
    return config


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def config_to_dict(config: AnyConfig) -> dict[str, Any]:
    """The flat form again (what a report stores under ``parameters``)."""
    if isinstance(config, ChainConfig):
        return {"chain": [config_to_dict(s) for s in config.steps]}
    out: dict[str, Any] = {"method": config.method}
    for f in dataclasses.fields(config):  # type: ignore[arg-type]
        value = getattr(config, f.name)
        if isinstance(value, TrainConfig):
            out.update(dataclasses.asdict(value))
        elif f.name != "method":
            out[f.name] = list(value) if isinstance(value, tuple) else value
    return out
