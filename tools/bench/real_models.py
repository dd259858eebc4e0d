"""Real-model corpus benchmark: every compression method and ONNX→TFLite on models nobody
here exported (issue 12), each case judged usable / clear refusal / wrong.

The corpus (:mod:`corpus`): PaddleOCR's detector, classifier and recogniser and Silero's
VAD as their pip packages ship them (``pip install -e '.[corpus]'``; a missing package
skips its models), a MobileNetV3-like CNN with SE blocks and a transformer encoder with
int64 ids built here with calibrated random weights, the zoo CNN (ONNX and TFLite), a
TFLite model without SignatureDef and one with FP16 weights. No download happens at run
time.

A case is

* **usable**: the command succeeded and an independent check agrees: base and result
  run on inputs the method never saw (the data's last rows, or inputs generated at the
  model's shape with other seeds) keep cosine ≥ 0.9 (maps, sequences) or top-1 agreement
  ≥ 70 % (class scores), with finite, non-constant outputs;
* **refused**: an edgeship error, one non-empty line that names the cause (a guard that
  refuses a collapsed result counts here: nothing wrong was written);
* **wrong**: a success that the check contradicts, or any other exception (a traceback);
* **n/a**: refused, clearly, because the method has nothing to act on (no prunable weight
  in the main graph) or the model's inputs need real values that the corpus has no data
  for; not counted as applicable. Silero's data gives its state and sample rate once, as
  per-call inputs (:mod:`edgeship.compress._data`).

Settings: ``prune`` at 0.5 per layer (``--scope layer``: global magnitude ranking zeroes
whole layers of BatchNorm-folded graphs, which the guard refuses), ``prune`` and
``prune-channels`` at 0.5 with 10 fine-tuning epochs where there is data (the defaults
otherwise: batches of 8, learning rate 1e-3), ONNX→TFLite at the data's shape.

Usage: ``python tools/bench/real_models.py [--out DIR] [--only NAME ...] [--json FILE]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tools.bench.corpus import Entry, build

ONNX_METHODS = ("int8-dynamic", "int8-static", "fp16", "prune", "prune-channels", "to-tflite")
TFLITE_METHODS = ("int8-dynamic", "int8-static", "fp16")
CHECK_ROWS = 8


@dataclass
class Case:
    model: str
    method: str
    status: str  # usable | refused | wrong | n/a
    detail: str
    seconds: float


def run_case(entry: Entry, method: str, out: Path) -> Case:
    t0 = time.perf_counter()
    try:
        result = _produce(entry, method, out)
    except Exception as exc:  # judged below: ours with one clear line, or a crash
        return Case(entry.name, method, *_judge_error(exc), round(time.perf_counter() - t0, 1))
    status, detail = _check(entry, result)
    return Case(entry.name, method, status, detail, round(time.perf_counter() - t0, 1))


def _produce(entry: Entry, method: str, out: Path) -> Path:
    from edgeship.compress import CompressOptions, compress, config_from_dict

    if method == "to-tflite":
        return _to_tflite(entry, out)
    spec: dict[str, object] = {"method": method}
    if method in ("prune", "prune-channels"):
        spec["sparsity"] = 0.5
    if method == "prune":
        spec["scope"] = "layer"  # global magnitude zeroes whole BN-folded layers: refused
    if method in ("prune", "prune-channels") and entry.data is not None:
        spec["epochs"] = 10  # what the guard's refusal suggests (fine-tuning on --data)
    suffix = ".tflite" if entry.model.suffix == ".tflite" else ".onnx"
    path = out / f"{entry.name}.{method}{suffix}"
    options = CompressOptions(latency_rounds=1, latency_runs=20, shapes=entry.shapes)
    compress(entry.model, config_from_dict(spec), entry.data, path, options)
    return path


def _to_tflite(entry: Entry, out: Path) -> Path:
    from edgeship.convert import ConvertConfig, VerifyData, convert

    path = out / f"{entry.name}.tflite"
    verify = VerifyData(data=entry.data, samples=8, shapes=entry.shapes)
    convert(ConvertConfig(str(entry.model), path, shapes=entry.shapes, verify=verify))
    return path


def _judge_error(exc: Exception) -> tuple[str, str]:
    from edgeship.compress import NothingToPrune
    from edgeship.core.errors import EdgeshipError, InputError

    text = str(exc).strip()
    line = f"{type(exc).__name__}: {' '.join(text.split())}"
    if isinstance(exc, NothingToPrune) or (
        isinstance(exc, InputError) and ("needs data" in text or "need real values" in text)
    ):
        return "n/a", line  # nothing the method acts on, or inputs only real data can give
    if isinstance(exc, EdgeshipError) and text and "Traceback" not in text:
        return "refused", line
    tail = traceback.format_exception_only(type(exc), exc)[-1].strip()
    return "wrong", f"crash: {tail[:300]}"


def check_feeds(entry: Entry) -> list[dict[str, np.ndarray]]:
    """Inputs for the independent check: the data's last rows one by one (with its per-call
    inputs), else inputs generated at the model's shape with seeds the tool does not use
    (100+)."""
    from edgeship.compress import load_dataset
    from edgeship.compress._evaluate import signature
    from edgeship_runtime.inputs import generate_feeds

    data = load_dataset(entry.data, entry.model)
    if data is not None:
        n = len(data)
        return [data.slice(i, i + 1).feeds for i in range(n - CHECK_ROWS, n)]
    sig = signature(entry.model)
    return [generate_feeds(sig, entry.shapes, seed=100 + i) for i in range(CHECK_ROWS)]


def _check(entry: Entry, result: Path) -> tuple[str, str]:
    """Every output of the result judged against the base's by its kind, independently of
    what the tool reported: usable when none collapsed."""
    from edgeship.compress._evaluate import predict_feeds
    from edgeship.models.kinds import judge_outputs, worst

    feeds = check_feeds(entry)
    base = predict_feeds(entry.model, feeds)
    try:
        got = predict_feeds(result, feeds)
    except Exception as exc:  # reported a success, yet does not run here
        return "wrong", f"the result does not run: {str(exc)[:200]}"
    shapes = [list(a.shape) for a in base.values()], [list(a.shape) for a in got.values()]
    if shapes[0] != shapes[1]:
        return "wrong", f"output shapes {shapes[1]} != base {shapes[0]}"
    size = f"size {result.stat().st_size / entry.model.stat().st_size:.2f}×"
    verdicts = judge_outputs(base, got)
    collapsed = [f"output {v.label}: {'; '.join(v.reasons)}" for v in verdicts if v.collapsed]
    if collapsed:
        return "wrong", f"{'; '.join(collapsed)} ({size})"
    least = worst(verdicts)
    figure = "" if least is None else f"{least.label} {least.figures()}"
    return "usable", f"{figure}, {size}"


def methods_for(entry: Entry) -> tuple[str, ...]:
    return TFLITE_METHODS if entry.model.suffix == ".tflite" else ONNX_METHODS


def matrix(cases: list[Case], entries: list[Entry]) -> str:
    methods = list(dict.fromkeys([*ONNX_METHODS, *TFLITE_METHODS]))
    by = {(c.model, c.method): c for c in cases}
    lines = ["| model | kind | " + " | ".join(methods) + " |", "|---|---|" + "---|" * len(methods)]
    for e in entries:
        cells = [by[(e.name, m)].status if (e.name, m) in by else "—" for m in methods]
        lines.append(f"| {e.name} | {e.kind} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary(cases: list[Case]) -> str:
    applicable = [c for c in cases if c.status != "n/a"]
    count = {s: sum(c.status == s for c in applicable) for s in ("usable", "refused", "wrong")}
    share = count["usable"] / len(applicable) if applicable else 0.0
    every = count["usable"] / len(cases) if cases else 0.0
    return (
        f"{len(applicable)} applicable cases: {count['usable']} usable ({share:.0%}), "
        f"{count['refused']} clear refusals, {count['wrong']} wrong; "
        f"{len(cases) - len(applicable)} n/a (clear refusals too); "
        f"usable among all {len(cases)} format-compatible cases: {every:.0%}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", type=Path, default=Path(".bench/real_models"))
    p.add_argument("--only", nargs="*", default=[], help="model names to run")
    p.add_argument("--json", type=Path, help="write every case as JSON here")
    ns = p.parse_args(argv)
    entries = [e for e in build(ns.out) if not ns.only or e.name in ns.only]
    cases: list[Case] = []
    for entry in entries:
        for method in methods_for(entry):
            case = run_case(entry, method, ns.out)
            cases.append(case)
            print(
                f"{case.model:16} {case.method:15} {case.status:8} {case.seconds:6.1f}s  "
                f"{case.detail[:160]}",
                flush=True,
            )
    print()
    print(matrix(cases, entries))
    print()
    print(summary(cases))
    if ns.json is not None:
        ns.json.write_text(json.dumps([asdict(c) for c in cases], indent=2) + "\n")
    return 0 if all(c.status != "wrong" for c in cases) else 1


if __name__ == "__main__":
    sys.exit(main())
