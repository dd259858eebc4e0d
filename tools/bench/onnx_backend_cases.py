"""ONNX's backend node test cases through edgeship, against their reference outputs.

The cases are those of the installed onnx wheel (``onnx.backend.test.case.node``: each a
one-node model and its inputs and expected outputs, the data that ``onnx`` writes as
``data/node/*/model.onnx`` and ``test_data_set_*/*.pb``; the wheels of 1.2x no longer ship
those files, so they are collected from the definitions here). Each case is run by
ONNX Runtime in this process first; a case it fails, or that needs the training domain or
a value edgeship's protocol does not carry (sequences, optionals, maps), is skipped. The
others go through a :class:`~edgeship.targets.Target` (``load`` + ``run``, the path of
``edgeship run``) and their outputs are compared with the references (same dtype and
shape; floats within the case's ``rtol``/``atol``, NaN equal to NaN; strings equal).

``StringNormalizer`` falls back to the locale en_US.UTF-8 when the model names none, and
ONNX Runtime refuses to load it on a machine without that locale (most containers and
boards); the cases' strings are ASCII, so their models are run with ``locale`` set to
C.UTF-8, present on every glibc system, which gives the same outputs.

Prints the passed/failed/skipped counts, why cases were skipped, and each failure; exits 1
when a case failed.

Usage: ``python tools/bench/onnx_backend_cases.py [--target local|NAME] [--only NAME...]``
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeship.core.errors import EdgeshipError
from edgeship.targets import Target, open_target
from edgeship_runtime import frames

TRAINING_DOMAIN = "ai.onnx.preview.training"
LOCALE = "C.UTF-8"


@dataclass
class Tally:
    """Case names by outcome; a skip or failure with its reason."""

    passed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def line(self) -> str:
        return f"passed {len(self.passed)}, failed {len(self.failed)}, skipped {len(self.skipped)}"


def cases(names: Iterable[str] = ()) -> list[Any]:
    """The node test cases of the installed onnx wheel (all, or those named), their
    tensors as numpy arrays (TensorProtos and numpy scalars converted)."""
    import warnings

    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():  # the case definitions divide by zero on purpose
        warnings.simplefilter("ignore")
        found = collect_testcases()
    for case in found:
        case.data_sets = [
            ([_value(v) for v in inputs], [_value(v) for v in outputs])
            for inputs, outputs in case.data_sets
        ]
    wanted = set(names)
    chosen = [c for c in found if not wanted or c.name in wanted]
    missing = wanted - {c.name for c in chosen}
    if missing:
        raise SystemExit(f"no such case(s) in onnx's node tests: {sorted(missing)}")
    return chosen


def _value(value: Any) -> Any:
    """A tensor as a numpy array; a sequence, optional or map as it is."""
    from onnx import TensorProto, numpy_helper

    if isinstance(value, TensorProto):
        return numpy_helper.to_array(value)
    return np.asarray(value) if isinstance(value, np.generic) else value


def portable(model: Any) -> Any:
    """``model`` with every StringNormalizer that names no locale given C.UTF-8 (see the
    module's text); other models as they are."""
    from onnx import helper

    for node in model.graph.node:
        if node.op_type == "StringNormalizer" and not any(
            a.name == "locale" for a in node.attribute
        ):
            node.attribute.append(helper.make_attribute("locale", LOCALE))
    return model


def why_skip(case: Any) -> str | None:
    """Why a case is not one edgeship is held to: None when ONNX Runtime passes it here
    and its values are tensors."""
    model = case.model
    if any(o.domain == TRAINING_DOMAIN for o in model.opset_import):
        return "training domain"
    values = [v for inputs, outputs in case.data_sets for v in [*inputs, *outputs]]
    if any(v is None or isinstance(v, list) for v in values):
        return "values that are not tensors (sequence, optional, map)"
    if any(v.dtype.kind not in frames.SAFE_KINDS + "O" for v in values):
        return "dtypes numpy holds only through ml_dtypes (bfloat16, float8, int4...)"
    try:
        import onnxruntime as ort

        session = ort.InferenceSession(
            model.SerializeToString(), providers=["CPUExecutionProvider"]
        )
        for inputs, expected in case.data_sets:
            got = session.run(None, feeds(model, inputs))
            if mismatch(case, expected, got) is not None:
                return "onnxruntime's outputs differ from the reference"
    except Exception as exc:  # onnxruntime raises its own untyped errors
        return f"onnxruntime fails ({type(exc).__name__})"
    return None


def feeds(model: Any, inputs: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """The case's inputs by the model's input names (initializers are not inputs)."""
    initialized = {t.name for t in model.graph.initializer}
    names = [i.name for i in model.graph.input if i.name not in initialized]
    return dict(zip(names, inputs, strict=True))


def mismatch(case: Any, expected: Sequence[np.ndarray], got: Sequence[Any]) -> str | None:
    """How ``got`` differs from the reference ``expected`` (in output order), or None."""
    if len(got) != len(expected):
        return f"{len(got)} outputs, expected {len(expected)}"
    for index, (want, have) in enumerate(zip(expected, got, strict=True)):
        have = np.asarray(have)
        if want.dtype.kind == "O" or have.dtype.kind in "OUS":
            if have.shape != want.shape or have.tolist() != want.tolist():
                return f"output {index}: {have.tolist()!r:.200} != {want.tolist()!r:.200}"
            continue
        if have.dtype != want.dtype or have.shape != want.shape:
            given, wanted = f"{have.dtype}{list(have.shape)}", f"{want.dtype}{list(want.shape)}"
            return f"output {index}: {given}, expected {wanted}"
        try:
            np.testing.assert_allclose(have, want, rtol=case.rtol, atol=case.atol, equal_nan=True)
        except AssertionError as exc:
            return f"output {index}: {str(exc).strip().splitlines()[-1][:200]}"
    return None


def through(target: Target, case: Any, workdir: Path) -> str | None:
    """Run ``case`` on ``target``; how its outputs differ from the reference, or None."""
    path = workdir / f"{case.name}.onnx"
    path.write_bytes(case.model.SerializeToString())
    try:
        with target.load(path) as loaded:
            names = [spec.name for spec in loaded.signature.outputs]
            for inputs, expected in case.data_sets:
                outputs = loaded.run(feeds(case.model, inputs))
                problem = mismatch(case, expected, [outputs[n] for n in names])
                if problem is not None:
                    return problem
    except EdgeshipError as exc:
        return f"{type(exc).__name__}: {str(exc)[:300]}"
    return None


def run_cases(target: Target, chosen: Iterable[Any], workdir: Path) -> Tally:
    tally = Tally()
    for case in chosen:
        portable(case.model)
        reason = why_skip(case)
        if reason is not None:
            tally.skipped[case.name] = reason
            continue
        problem = through(target, case, workdir)
        if problem is None:
            tally.passed.append(case.name)
        else:
            tally.failed[case.name] = problem
    return tally


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="local", help="a target name (default: local)")
    parser.add_argument("--only", nargs="*", default=(), help="case names (default: all)")
    ns = parser.parse_args(argv)
    chosen = cases(ns.only)
    with tempfile.TemporaryDirectory() as tmp, open_target(ns.target) as target:
        tally = run_cases(target, chosen, Path(tmp))
    print(f"ONNX backend node cases on {ns.target}: {tally.line()} (of {len(chosen)})")
    for reason, count in collections.Counter(tally.skipped.values()).most_common():
        print(f"  skipped {count:4d}: {reason}")
    for name, problem in tally.failed.items():
        print(f"  FAILED {name}: {problem}")
    return 1 if tally.failed else 0


if __name__ == "__main__":
    sys.exit(main())
