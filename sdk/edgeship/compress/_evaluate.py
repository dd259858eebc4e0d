"""Running produced models: batch predictions for fidelity, the one run on a target that
every produced model must pass, and interleaved batch-1 latency.

Predictions are every output of the model, by name (:data:`Outputs`): each is judged for
what it is (:mod:`edgeship.models.kinds`), not only the first.

Predictions run in this process through the edgeship runtime's own backends (the same
loading code the device uses); the figures are :mod:`edgeship.models.fidelity`'s. Verification
and latency go through a :class:`Target` the caller opened once for the whole run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from edgeship.compress._data import Dataset
from edgeship.compress.report import Latency
from edgeship.core.config import ConnectOptions, ProfileConfig
from edgeship.core.errors import (
    AuthenticationError,
    ConnectError,
    EdgeshipError,
    HostKeyError,
    VerificationError,
)
from edgeship.models import fidelity as figures
from edgeship.models.estimate import Interval, share_text, width_pp
from edgeship.models.fidelity import Fidelity
from edgeship.models.interface import InterfaceChange, interface_changes
from edgeship.models.kinds import OutputVerdict, figure_label
from edgeship.models.model_file import ModelFile
from edgeship.models.onnx_graph import graphs
from edgeship.targets import Target, open_target
from edgeship.targets.interleave import interleaved
from edgeship_runtime.backends import SessionOptions
from edgeship_runtime.inputs import generate_feeds, named_as
from edgeship_runtime.measure import MeasurePolicy
from edgeship_runtime.model import load_model
from edgeship_runtime.signature import Signature

__all__ = [
    "BATCH_DEPENDENT",
    "EVAL_BATCH",
    "GENERATED_RUNS",
    "UNREACHABLE",
    "WIDE_PP",
    "IntegerIO",
    "Outputs",
    "accuracy",
    "batch_dependent",
    "describe_feeds",
    "estimate_notes",
    "fidelity",
    "first",
    "first_sample",
    "generated_feeds",
    "input_names",
    "integer_io",
    "interface",
    "latency",
    "latency_shapes",
    "model_feeds",
    "opened",
    "predict",
    "predict_feeds",
    "signature",
    "verify",
]

Outputs = dict[str, np.ndarray]
"""A model's outputs by name, in the model's order; first axis: samples."""

UNREACHABLE = (ConnectError, AuthenticationError, HostKeyError)
"""Errors that say nothing about the model: they propagate as they are."""

EVAL_BATCH = 256
BATCH_DEPENDENT = frozenset(
    {"DynamicQuantizeLinear", "DynamicQuantizeMatMul", "DynamicQuantizeLSTM"}
)
"""Ops whose result for one sample depends on the rest of its batch: dynamic quantization
takes its activation range over the whole input tensor. A model holding them is judged
one sample per call, as a device runs it."""


def signature(path: Path) -> Signature:
    loaded = load_model(str(path), options=SessionOptions(threads=1))
    try:
        return loaded.session.signature
    finally:
        loaded.close()


GENERATED_RUNS = 8
"""Runs of generated inputs (seeds 0..7) that stand in for data in the fidelity check."""


def generated_feeds(
    path: Path,
    shapes: Mapping[str, tuple[int, ...]],
    runs: int = GENERATED_RUNS,
    first_seed: int = 0,
) -> list[dict[str, np.ndarray]]:
    """Inputs generated at ``path``'s real shape, one set per seed from ``first_seed``:
    dynamic non-batch dims from ``shapes`` or an :class:`~edgeship.core.errors.InputError`
    naming the dim."""
    sig = signature(path)
    return [generate_feeds(sig, shapes, seed=first_seed + i) for i in range(runs)]


def describe_feeds(feeds: Sequence[Mapping[str, np.ndarray]]) -> str:
    shapes = ", ".join(f"{n} {list(a.shape)}" for n, a in feeds[0].items())
    return f"inputs generated at the model's shape ({len(feeds)} seeds of {shapes})"


def predict_feeds(
    path: Path, feeds: Sequence[Mapping[str, np.ndarray]], threads: int = 2
) -> Outputs:
    """Every output of ``path`` on each set of ``feeds`` (by name, or by position when the
    names differ: :func:`edgeship_runtime.inputs.input_mapping`; integers and floats cast
    to the model's widths, as a converted model may take int32 token ids), each
    concatenated along the first axis."""
    loaded = load_model(str(path), options=SessionOptions(threads=threads))
    try:
        sig = loaded.session.signature
        io = integer_io(path, sig)
        calls = [io.dequantize(loaded.run(io.quantize(model_feeds(sig, f)))) for f in feeds]
    finally:
        loaded.close()
    return _joined(sig, calls)


def _joined(sig: Signature, calls: Sequence[Sequence[np.ndarray]]) -> Outputs:
    """Each output of ``sig`` over ``calls`` (one list of outputs per call), concatenated
    along the first axis as float32 (a 0-d output becomes one row per call)."""
    return {
        spec.name: np.concatenate(
            [np.asarray(c[i]).reshape(-1, *np.shape(c[i])[1:]) for c in calls]
        ).astype(np.float32)
        for i, spec in enumerate(sig.outputs)
    }


def first(outputs: Outputs) -> np.ndarray:
    """The first output (what labels and a classifier's accuracy are about)."""
    return next(iter(outputs.values()))


def model_feeds(sig: Signature, call: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``call`` as ``sig``'s inputs: by name, or by position when the names differ
    (:func:`edgeship_runtime.inputs.input_mapping`), integers and floats cast to the
    model's widths."""
    names = [s.name for s in sig.inputs]
    pairs = zip(sig.inputs, named_as(call, names).values(), strict=True)
    return {s.name: _same_kind(a, s.dtype) for s, a in pairs}


def _same_kind(array: np.ndarray, dtype: str) -> np.ndarray:
    """``array`` in ``dtype`` when both are integers or both floats (else as it is)."""
    if dtype == "str" or array.dtype.name == dtype:
        return array
    kinds = {array.dtype.kind, np.dtype(dtype).kind}
    return array.astype(dtype) if kinds <= {"i", "u"} or kinds == {"f"} else array


def latency_shapes(path: Path, data: Dataset | None) -> dict[str, tuple[int, ...]]:
    """Batch-1 shapes of ``data``'s samples for the inputs of ``path`` with dynamic dims."""
    if data is None:
        return {}
    return {
        s.name: data.sample_shape(s.name)
        for s in signature(path).inputs
        if s.is_dynamic and s.name in data.feeds
    }


def predict(path: Path, data: Dataset, threads: int = 2) -> Outputs:
    """Every output of ``path`` on all of ``data``, batched (per sample when the model's
    batch dim is fixed, as in TFLite, or when a sample's result depends on its batch:
    :data:`BATCH_DEPENDENT`)."""
    loaded = load_model(str(path), options=SessionOptions(threads=threads))
    try:
        sig = loaded.session.signature
        fixed = all(isinstance(s.shape[0], int) and s.shape[0] > 0 for s in sig.inputs if s.shape)
        size = int(sig.inputs[0].shape[0]) if fixed and sig.inputs[0].shape else EVAL_BATCH  # type: ignore[arg-type]
        size = 1 if batch_dependent(path) else size
        feeds = (
            data.renamed([s.name for s in sig.inputs])
            if data.names != [s.name for s in sig.inputs]
            else data
        )
        io = integer_io(path, sig)
        calls = [io.dequantize(loaded.run(io.quantize(batch))) for batch in feeds.batches(size)]
    finally:
        loaded.close()
    return _joined(sig, calls)


def batch_dependent(path: Path) -> bool:
    """Whether an ONNX model holds a :data:`BATCH_DEPENDENT` op, in any of its graphs."""
    model = ModelFile.of(path)
    if model.format != "onnx":
        return False
    return any(n.op_type in BATCH_DEPENDENT for g in graphs(model.graph.graph) for n in g.node)


class IntegerIO:
    """Float data in and out of a fully integer TFLite model, with its own scales: each
    integer input's ``(scale, zero point, dtype)`` by name, each output's ``(scale, zero
    point)`` in order (scale 0: a float output)."""

    def __init__(
        self, inputs: dict[str, tuple[float, int, str]], outputs: Sequence[tuple[float, int]]
    ):
        self.inputs, self.outputs = inputs, list(outputs)

    def quantize(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = {}
        for name, value in feeds.items():
            if name in self.inputs and value.dtype.kind == "f":
                scale, zero, dtype = self.inputs[name]
                info = np.iinfo(dtype)
                q = np.round(value / scale) + zero
                value = np.clip(q, info.min, info.max).astype(dtype)
            out[name] = value
        return out

    def dequantize(self, values: Sequence[np.ndarray]) -> list[np.ndarray]:
        scales = self.outputs + [(0.0, 0)] * (len(values) - len(self.outputs))
        return [
            (v.astype(np.float32) - zero) * scale if v.dtype.kind in "iu" and scale else v
            for v, (scale, zero) in zip(values, scales, strict=True)
        ]


def integer_io(path: Path, sig: Signature) -> IntegerIO:
    """Scales of integer inputs/outputs (TFLite full INT8); identity for everything else."""
    if not any(s.dtype in ("int8", "uint8", "int16") for s in (*sig.inputs, *sig.outputs)):
        return IntegerIO({}, [])
    if path.suffix != ".tflite":
        return IntegerIO({}, [])
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    ins = {}
    for spec, detail in zip(sig.inputs, interp.get_input_details(), strict=True):
        scale, zero = detail["quantization"]
        if scale:
            ins[spec.name] = (float(scale), int(zero), np.dtype(detail["dtype"]).name)
    details = interp.get_output_details()
    outs = [(float(d["quantization"][0]), int(d["quantization"][1])) for d in details]
    return IntegerIO(ins, outs)


def interface(base: Path, model: Path) -> list[InterfaceChange]:
    """Each input and output whose dtype or shape differs between ``base`` and ``model``."""
    return interface_changes(signature(base), signature(model))


def accuracy(outputs: Outputs, labels: np.ndarray | None) -> float | None:
    """Top-1 accuracy of the first output (see :func:`edgeship.models.fidelity.accuracy`);
    None without labels."""
    return figures.accuracy(first(outputs), labels)


def fidelity(base: Outputs, new: Outputs, labels: np.ndarray | None) -> Fidelity:
    """The first output of ``new`` against ``base``'s (first axis: samples): the report's
    top-level figures, and accuracy on ``labels``; top-1 agreement only where the output's
    own shape is that of class scores (:func:`edgeship.models.fidelity.is_class_scores`).
    Every output's verdict is :func:`edgeship.models.kinds.judge_outputs`'."""
    return figures.compare(first(base), first(new), labels)


WIDE_PP = 5.0
"""A share whose 95 % interval is wider than this many points rests on too few samples to
be read to the point: the report says so."""


def estimate_notes(
    fid: Fidelity, outputs: Sequence[OutputVerdict], held_given: bool, generated: bool
) -> list[str]:
    """What the report's shares rest on, where a reader could misread them: the widest
    interval when it is wider than :data:`WIDE_PP` points (few samples), and accuracy on
    labels of ``--data`` (the base may have been trained on those very samples)."""
    shares: list[tuple[str, float, int, Interval]] = [
        (f"{figure_label(k)} of output {v.label}", float(v.metrics[k] or 0.0), v.samples, ci)
        for v in outputs
        for k, ci in v.intervals.items()
    ]
    if fid.accuracy is not None and fid.accuracy_ci is not None:
        shares.append(("accuracy", fid.accuracy, fid.samples, fid.accuracy_ci))
    notes = []
    widest = max(shares, key=lambda share: width_pp(share[3]), default=None)
    if widest is not None and width_pp(widest[3]) > WIDE_PP:
        label, value, n, ci = widest
        more = "generated inputs" if generated else "held-out samples (--eval-data)"
        notes.append(
            f"judged on only {n} samples: {label} {share_text(value, n, ci)} (95 % Wilson "
            f"interval, {width_pp(ci):.1f} points wide); more {more} would narrow it"
        )
    if fid.accuracy is not None and not held_given:
        notes.append(
            "accuracy is on labels of --data: if the base was trained on these samples it "
            "reads high; --eval-data with a test split gives a fair figure"
        )
    return notes


def verify(path: Path, sample: dict[str, np.ndarray] | None, target: Target) -> str:
    """Load and run ``path`` once on ``target``; its name, or :class:`VerificationError`.

    ``sample`` (one sample per input) goes to the model's inputs by name, or by position
    when the names differ (:func:`edgeship_runtime.inputs.input_mapping`);
    without it the runtime generates inputs from the signature. Nothing of ``path`` is
    loaded in this process before it ran there (a malformed graph can crash ONNX Runtime).
    A target that cannot be reached at all raises its own error: that says nothing about
    the model.
    """
    try:
        if sample is None:
            policy = MeasurePolicy(warmup=0, runs=1, min_seconds=0.0)
            target.profile(path, ProfileConfig(policy=policy, session=SessionOptions(threads=1)))
        else:  # the signature from the target too: a malformed model may crash a runtime
            with target.load(path, ProfileConfig(session=SessionOptions(threads=1))) as loaded:
                sig = loaded.signature
                names = [s.name for s in sig.inputs]
                feeds = named_as(sample, names)
                loaded.run(integer_io(path, sig).quantize(feeds))
    except UNREACHABLE:
        raise
    except EdgeshipError as exc:
        raise VerificationError(
            f"{path}: the produced model did not run on {target.name}: {exc}",
            path=str(path),
            target=target.name,
        ) from exc
    return target.name


def latency(
    base: Path,
    model: Path,
    target: Target | str = "local",
    threads: int = 1,
    rounds: int = 3,
    runs: int = 200,
    shapes: Mapping[str, tuple[int, ...]] | None = None,
    min_seconds: float = 0.0,
) -> Latency:
    """Per-round p50s (batch 1) of ``base`` and ``model``, and their medians, measured
    interleaved (:func:`edgeship.targets.interleave.interleaved`), after one discarded round
    (a runtime's first sessions run slower: cold caches, clocks); each model's window in a
    round is at least ``runs`` runs and ``min_seconds`` of them. A target spec is opened
    for the call. ``shapes``: of the inputs with dynamic dims (else they must have none
    but the batch)."""

    config = ProfileConfig(
        policy=MeasurePolicy(warmup=max(20, runs // 5), runs=runs, min_seconds=min_seconds),
        session=SessionOptions(threads=threads),
        shapes=dict(shapes or {}),
    )
    with opened(target) as tgt:
        base_reports, model_reports = interleaved(
            tgt.profile, [(base, config), (model, config)], rounds, discard=1
        )
        name = tgt.name
    return Latency.of_rounds(
        name,
        threads,
        [r.latency_ms.p50 for r in base_reports],
        [r.latency_ms.p50 for r in model_reports],
        {t.name: t.shape for t in base_reports[0].inputs},
    )


@contextlib.contextmanager
def opened(target: Target | str, connect: ConnectOptions | None = None) -> Iterator[Target]:
    """``target`` itself (left open: its owner closes it), or the one target a spec names,
    opened with ``connect`` for the ``with`` body and closed after it."""
    if isinstance(target, Target):
        yield target
        return
    with open_target(target, connect) as named:
        yield named


def first_sample(data: Dataset | None) -> dict[str, np.ndarray] | None:
    return None if data is None else data.take(1).feeds


def input_names(path: Path) -> Sequence[str]:
    return [s.name for s in signature(path).inputs]
