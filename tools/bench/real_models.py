"""Real-model corpus benchmark: every compression method and ONNX→TFLite on models nobody
here exported (issues 12 and 24), each case judged usable / clear refusal / wrong.

The corpus (:mod:`corpus`, :mod:`corpus_field`): model files that pip packages ship in
their wheels (PaddleOCR's three, Silero's VAD in four exports, NudeNet's YOLOv8n,
MediaPipe's detectors, landmark models and segmenter, openWakeWord's front-end, embedding
and classifier, Magika; a missing package skips its models), and architectures built here
(a MobileNetV3-like CNN, also stored with FP16 weights, a transformer encoder, the zoo's
CNN as ONNX and TFLite, with and without SignatureDef, and with FP16 weights). No download
happens at run time.

Each result is judged by the benchmark's own code, written apart from edgeship's (which
it must be able to catch): its own runner (:mod:`_run`), its own verdict for every output
and every part of a packed head by the kind the corpus declares (:mod:`_judge`), its own
decode, NMS and AP against the base for detectors (:mod:`_detect`). Inputs: the data's
last rows, one call each. A case is

* **usable**: the command succeeded and every output, part and the task figure pass
  their bars; the result keeps the base's input and output dtypes and shapes, and a
  compressed result is not larger than its base. Its size and latency against the base
  (single-threaded, the two in turn, here) are printed; a slower one is counted apart;
* **refused**: an edgeship error, one non-empty line that names the cause (a file left
  at ``--out`` is noted as debris);
* **wrong**: a success the judge contradicts (*silently wrong*), or any other exception
  (a crash);
* **n/a**: refused, clearly, because the method has nothing to act on (no layer to prune;
  nothing to convert: fp16 of a model whose float weights are float16 already) or the
  inputs need real values the corpus has no data for; not counted as applicable.

Settings: ``prune`` at 0.5 per layer (``--scope layer``), ``prune`` and
``prune-channels`` at 0.5 with 10 fine-tuning epochs where there is data, both with the
sparsity search (``--sparsity-search``: 0.5 is the ceiling; the sparsity kept is printed
with the case), ONNX→TFLite at the data's shape.

Usage: ``python tools/bench/real_models.py [--out DIR] [--only NAME ...] [--skip NAME ...]
[--methods M ...] [--json FILE] [--second-opinion]``; ``--merge A.json B.json`` prints
the matrix of runs made apart (two processes on parts of the corpus).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tools.bench._detect import agreement
from tools.bench._judge import BARS, guess_spec, interface_changes, judge_output
from tools.bench._run import Session, latency_ratio, rows
from tools.bench.corpus import Entry, build

ONNX_METHODS = ("int8-dynamic", "int8-static", "fp16", "prune", "prune-channels", "to-tflite")
TFLITE_METHODS = ("int8-dynamic", "int8-static", "fp16")
CHECK_ROWS = 8


Out = dict[str, np.ndarray]


@dataclass
class Case:
    model: str
    method: str
    status: str  # usable | refused | wrong | n/a
    detail: str
    seconds: float
    outputs: list[str] = field(default_factory=list)
    task: str = ""
    size_ratio: float = 0.0
    latency_ratio: float = 0.0
    interface: list[str] = field(default_factory=list)
    said: list[str] = field(default_factory=list)  # the interface changes edgeship reported
    kept_anyway: str = ""  # a refused result made with allow_degraded, as the judge finds it
    searched: str = ""  # edgeship's note on the sparsity search, with the sparsity kept


def run_case(entry: Entry, method: str, out: Path, second_opinion: bool = False) -> Case:
    """One model × method. With ``second_opinion``, a result refused as collapsed by a
    method that does not train is made again with ``allow_degraded`` and judged: the
    refusal's detail says whether the benchmark's judge agrees."""
    t0 = time.perf_counter()
    path = _path(entry, method, out)
    path.unlink(missing_ok=True)
    try:
        said, searched = _produce(entry, method, path)
    except Exception as exc:  # judged below: ours with one clear line, or a crash
        status, detail = _judge_error(exc)
        if path.exists():
            detail += f" [debris: {path.name} left at --out]"
        case = Case(entry.name, method, status, detail, 0.0)
        trains = method in ("prune", "prune-channels")  # a second fine-tuning: too long
        if second_opinion and not trains and type(exc).__name__ == "FidelityCollapse":
            case.kept_anyway = _kept_anyway(entry, method, path)
        case.seconds = round(time.perf_counter() - t0, 1)
        return case
    case = Case(entry.name, method, "usable", "", 0.0, said=said, searched=searched)
    _check(entry, path, case)
    case.seconds = round(time.perf_counter() - t0, 1)
    return case


def _kept_anyway(entry: Entry, method: str, path: Path) -> str:
    try:
        _produce(entry, method, path, allow_degraded=True)
    except Exception as exc:
        return f"fails again: {type(exc).__name__}"
    kept = Case(entry.name, method, "usable", "", 0.0)
    _check(entry, path, kept)
    path.unlink(missing_ok=True)
    verdict = "usable" if kept.status == "usable" else f"broken: {kept.detail}"
    return f"{verdict}; {kept.task}".rstrip("; ")


def _path(entry: Entry, method: str, out: Path) -> Path:
    if method == "to-tflite":
        return out / f"{entry.name}.tflite"
    suffix = ".tflite" if entry.model.suffix == ".tflite" else ".onnx"
    return out / f"{entry.name}.{method}{suffix}"


def _produce(
    entry: Entry, method: str, path: Path, allow_degraded: bool = False
) -> tuple[list[str], str]:
    """Make the result; the names of the inputs and outputs whose interface edgeship's
    report says changed, and its note on the sparsity search ("" without one)."""
    from edgeship.compress import CompressOptions, GuardPolicy, compress, config_from_dict

    if method == "to-tflite":
        return _to_tflite(entry, path), ""
    spec: dict[str, object] = {"method": method}
    if method in ("prune", "prune-channels"):
        spec["sparsity"] = 0.5
        spec["sparsity_search"] = True  # the largest sparsity up to 0.5 that holds
    if method == "prune":
        spec["scope"] = "layer"  # global magnitude zeroes whole BN-folded layers: refused
    if method in ("prune", "prune-channels") and entry.data is not None:
        spec["epochs"] = 10  # what the guard's refusal suggests (fine-tuning on --data)
    guard = GuardPolicy(allow_degraded=allow_degraded)
    options = CompressOptions(latency_rounds=1, latency_runs=20, shapes=entry.shapes, guard=guard)
    result = compress(entry.model, config_from_dict(spec), entry.data, path, options)
    searched = [n for n in result.report.notes if n.startswith("sparsity search:")]
    return [c.name for c in result.report.interface], "".join(searched)


def _to_tflite(entry: Entry, path: Path) -> list[str]:
    from edgeship.convert import ConvertConfig, VerifyData, convert

    verify = VerifyData(data=entry.data, samples=8, shapes=entry.shapes)
    result = convert(ConvertConfig(str(entry.model), path, shapes=entry.shapes, verify=verify))
    return [c.name for c in result.report.verification.interface]


def _judge_error(exc: Exception) -> tuple[str, str]:
    from edgeship.compress import NothingToConvert, NothingToPrune
    from edgeship.core.errors import EdgeshipError, InputError

    text = str(exc).strip()
    line = f"{type(exc).__name__}: {' '.join(text.split())}"
    if isinstance(exc, NothingToPrune | NothingToConvert) or (
        isinstance(exc, InputError) and ("needs data" in text or "need real values" in text)
    ):
        return "n/a", line  # nothing the method acts on, or inputs only real data can give
    if isinstance(exc, EdgeshipError) and text and "Traceback" not in text:
        return "refused", line
    tail = traceback.format_exception_only(type(exc), exc)[-1].strip()
    return "wrong", f"crash: {tail[:300]}"


def check_feeds(entry: Entry, session: Session) -> list[dict[str, np.ndarray]]:
    """Inputs for the check: the data's last rows one by one (with its per-call inputs),
    else inputs drawn at the model's shape with seeds the tool does not use (100+)."""
    names = [p[0] for p in session.inputs]
    if entry.data is not None:
        return rows(entry.data, names, CHECK_ROWS)
    feeds = []
    for i in range(CHECK_ROWS):
        rng = np.random.default_rng(100 + i)
        feed = {}
        for name, dtype, shape in session.inputs:
            dims = entry.shapes.get(name) or tuple(1 if d is None else d for d in shape)
            feed[name] = rng.standard_normal(dims).astype(dtype)
        feeds.append(feed)
    return feeds


def _check(entry: Entry, result: Path, case: Case) -> None:
    """Judge the result against the base with the benchmark's own runner and judge
    (:mod:`_run`, :mod:`_judge`, :mod:`_detect`): its interface, every output and part,
    the task, then its size and latency; fills ``case``."""
    if not result.is_file():
        case.status, case.detail = "wrong", "reported a success, wrote no file"
        return
    base = Session(entry.model)
    case.size_ratio = round(result.stat().st_size / entry.model.stat().st_size, 3)
    try:
        got = Session(result)
    except Exception as exc:
        case.status, case.detail = "wrong", f"the result does not load: {str(exc)[:200]}"
        return
    case.interface = interface_changes(base.inputs, got.inputs, "input")
    case.interface += interface_changes(base.outputs, got.outputs, "output")
    unsaid = [c for c in case.interface if not any(f"{n!r}" in c for n in case.said)]
    if case.interface and (unsaid or case.method != "to-tflite"):
        # a compressed model keeps its interface; a conversion may change it, said
        case.status, case.detail = "wrong", "interface changed: " + "; ".join(case.interface)
        return
    if case.interface:
        case.detail = "interface changed, as edgeship's report says: " + "; ".join(case.interface)
    feeds = check_feeds(entry, base)
    base_out = [base.run(f) for f in feeds]
    try:
        got_out = [got.run(f) for f in feeds]
    except Exception as exc:  # reported a success, yet does not run here
        case.status, case.detail = "wrong", f"the result does not run: {str(exc)[:200]}"
        return
    broken = _judge_all(entry, base_out, got_out, case)
    case.latency_ratio = round(latency_ratio(base, got, feeds[0]), 3)
    if case.method != "to-tflite" and case.size_ratio > 1.0:
        broken.append(f"larger than its base ({case.size_ratio:.2f}×)")
    if broken:
        case.status, case.detail = "wrong", "; ".join(broken)


def _judge_all(entry: Entry, base: list[Out], got: list[Out], case: Case) -> list[str]:
    """Every output's verdicts and the task figure into ``case``; what is broken."""
    broken: list[str] = []
    names = list(base[0])
    for k, name in enumerate(names):
        other = list(got[0])[k]
        b = np.stack([o[name] for o in base])
        g = np.stack([o[other] for o in got])
        spec = entry.outputs.get(name) or guess_spec(b)
        for verdict in judge_output(name, spec, b, g):
            case.outputs.append(verdict.line())
            broken += [f"{verdict.output}: {f}" for f in verdict.failures]
            if not case.task and verdict.kind.split(":")[0] in TASK_FIGURES:
                figure = TASK_FIGURES[verdict.kind.split(":")[0]]
                case.task = f"{figure} {verdict.figures.get(figure, float('nan')):.3f}"
    if entry.detector is not None:
        renamed = [{n: o[m] for n, m in zip(names, o, strict=True)} for o in got]
        found = agreement(entry.detector, base, renamed)
        matched, total = found["matched"], found["base_detections"]
        case.task = f"ap50 {found['ap50']:.3f} ({matched:.0f} of {total:.0f} base detections)"
        if found["ap50"] < BARS.detection_ap:
            broken.append(f"detections: ap50 {found['ap50']:.3f} < {BARS.detection_ap}")
    return broken


TASK_FIGURES = {"scores": "top1", "mask": "iou", "ctc": "text"}
"""The figure that is a model's task agreement, by output kind (the first such output)."""


def methods_for(entry: Entry) -> tuple[str, ...]:
    return TFLITE_METHODS if entry.model.suffix == ".tflite" else ONNX_METHODS


def matrix(cases: list[Case], entries: list[tuple[str, str]]) -> str:
    """Models × methods: each cell its status, the result's size and speed-up over the
    base where it is usable."""
    methods = list(dict.fromkeys([*ONNX_METHODS, *TFLITE_METHODS]))
    by = {(c.model, c.method): c for c in cases}
    lines = ["| model | kind | " + " | ".join(methods) + " |", "|---|---|" + "---|" * len(methods)]
    for name, kind in entries:
        cells = [_cell(by[(name, m)]) if (name, m) in by else "—" for m in methods]
        lines.append(f"| {name} | {kind} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(case: Case) -> str:
    if case.status != "usable":
        return case.status
    return f"usable {case.size_ratio:.2f}× size, {_speed(case.latency_ratio)}"


def _speed(ratio: float) -> str:
    """A latency ratio (result over base) in words: ``2.1× faster``, ``3.2× slower``."""
    return f"{1 / ratio:.2f}× faster" if ratio <= 1 else f"{ratio:.2f}× slower"


def summary(cases: list[Case]) -> str:
    applicable = [c for c in cases if c.status != "n/a"]
    count = {s: sum(c.status == s for c in applicable) for s in ("usable", "refused", "wrong")}
    share = count["usable"] / len(applicable) if applicable else 0.0
    silent = sum(c.status == "wrong" and not c.detail.startswith("crash") for c in cases)
    debris = sum("[debris" in c.detail for c in cases)
    slower = sum(c.status == "usable" and c.latency_ratio > 1 for c in cases)
    over = sum(c.kept_anyway.startswith("usable") for c in cases)
    opined = sum(bool(c.kept_anyway) for c in cases)
    collapses = sum(c.detail.startswith("FidelityCollapse") for c in cases)
    best: dict[str, float] = {}
    for c in cases:
        if c.status == "usable" and c.latency_ratio > 0:
            best[c.model] = max(best.get(c.model, 0.0), 1 / c.latency_ratio)
    median = f"{float(np.median(list(best.values()))):.2f}×" if best else "—"
    return (
        f"{len(applicable)} applicable cases: {count['usable']} usable ({share:.0%}), "
        f"{count['refused']} clear refusals, {count['wrong']} wrong ({silent} silently: "
        f"exit 0 and an output the judge finds broken); {len(cases) - len(applicable)} n/a; "
        f"{slower} usable but slower than the base here; {debris} refusals left debris; "
        f"{over} refused as collapsed that the judge finds usable (of the {opined} of "
        f"{collapses} such refusals made again for its second opinion); "
        f"median speed-up of the best usable variant over {len(best)} models: {median}"
    )


def report(case: Case) -> str:
    """A case as lines: status, time, size and speed, the task figure, then each output's
    verdict or the refusal."""
    head = f"{case.model:18} {case.method:15} {case.status:8} {case.seconds:6.1f}s"
    if case.size_ratio:
        head += f"  size {case.size_ratio:.2f}×"
    if case.latency_ratio:
        head += f", {_speed(case.latency_ratio)}"
    if case.task:
        head += f"  task: {case.task}"
    lines = [head] + [f"    {line}" for line in case.outputs]
    if case.detail:
        lines.append(f"    {case.detail[:400]}")
    if case.kept_anyway:
        lines.append(f"    the judge, on the result kept anyway: {case.kept_anyway[:300]}")
    if case.searched:
        lines.append(f"    edgeship: {case.searched[:600]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", type=Path, default=Path(".bench/real_models"))
    p.add_argument("--only", nargs="*", default=[], help="model names to run, in this order")
    p.add_argument("--skip", nargs="*", default=[], help="model names not to run")
    p.add_argument("--methods", nargs="*", default=[], help="methods to run (all by default)")
    p.add_argument("--json", type=Path, help="write every case as JSON here")
    p.add_argument(
        "--second-opinion",
        action="store_true",
        help="make each result refused as collapsed again, kept, and judge it",
    )
    p.add_argument(
        "--merge",
        nargs="*",
        type=Path,
        default=[],
        help="print the matrix of these JSON files (a case run twice: the last) and exit",
    )
    ns = p.parse_args(argv)
    if ns.merge:
        runs = [json.loads(f.read_text()) for f in ns.merge]
        merged = {(c["model"], c["method"]): Case(**c) for run in runs for c in run["cases"]}
        kinds = dict.fromkeys((k[0], k[1]) for run in runs for k in run["kinds"])
        return _print(list(merged.values()), list(kinds))
    entries = [
        e
        for e in build(ns.out, tuple(ns.only))
        if (not ns.only or e.name in ns.only) and e.name not in ns.skip
    ]
    entries.sort(key=lambda e: ns.only.index(e.name) if ns.only else 0)  # in --only's order
    cases: list[Case] = []
    for entry in entries:
        for method in methods_for(entry):
            if ns.methods and method not in ns.methods:
                continue
            cases.append(run_case(entry, method, ns.out, ns.second_opinion))
            print(report(cases[-1]), flush=True)
            if ns.json is not None:
                kinds = [(e.name, e.kind) for e in entries]
                run = {"cases": [asdict(c) for c in cases], "kinds": kinds}
                ns.json.write_text(json.dumps(run, indent=2) + "\n")
    return _print(cases, [(e.name, e.kind) for e in entries])


def _print(cases: list[Case], kinds: list[tuple[str, str]]) -> int:
    print()
    print(matrix(cases, kinds))
    print()
    print(summary(cases))
    return 0 if all(c.status != "wrong" for c in cases) else 1


if __name__ == "__main__":
    sys.exit(main())
