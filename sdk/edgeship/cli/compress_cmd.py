"""``edgeship compress MODEL --method M --out OUT`` or ``--recipe R.toml --out DIR``.

Methods: int8-dynamic, int8-static, fp16, prune, prune-channels, distill. MODEL is an
.onnx/.tflite file, or a torch state dict (.pt) with ``--arch module:factory``. ``--data``
is an .npz with the model's inputs under their names and optionally ``labels``; methods
that need no data (fp16, int8-dynamic, magnitude/L1 pruning without fine-tuning) run
without it. Every produced model is loaded and run once on ``--target`` before success is
reported; all checks of one command (every variant of a recipe) share one runtime there.
The recipe format: docs/recipes.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeship.cli.common import shape_option, target_from_args, target_options
from edgeship.cli.next_step import after_compress, print_next
from edgeship.cli.output import print_json, status_line, table
from edgeship.compress.report import shapes_text, speed_text
from edgeship.core.errors import UsageError
from edgeship.core.progress import StatusLine, bar
from edgeship.models.estimate import share_text
from edgeship_runtime.inputs import parse_shape_overrides

if TYPE_CHECKING:
    from edgeship.compress.training.loop import EpochDone

__all__ = ["config_from_args", "model_from_args", "register", "run", "summary"]

_TRAIN = (
    "epochs",
    "lr",
    "batch_size",
    "temperature",
    "alpha",
    "target_accuracy",
    "max_seconds",
    "val_fraction",
)


def register(sub: argparse._SubParsersAction) -> None:
    from edgeship.compress import method_names
    from edgeship.compress.config import (
        CALIBRATIONS,
        CHANNEL_IMPORTANCES,
        LATENCY_SECONDS,
        SCOPES,
        WEIGHT_IMPORTANCES,
    )
    from edgeship.models.kinds import KINDS

    p = sub.add_parser(
        "compress",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[target_options()],
    )
    p.add_argument("model", metavar="MODEL", help=".onnx, .tflite, or .pt with --arch")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument(
        "--method", choices=method_names(), help="one compression method (or --recipe)"
    )
    how.add_argument("--recipe", type=Path, metavar="R.toml", help="several variants and a table")
    p.add_argument("--data", type=Path, metavar="D.npz", help="inputs by name (+ labels)")
    p.add_argument(
        "--eval-data",
        type=Path,
        metavar="E.npz",
        help="held-out inputs (+ labels) the result is measured on (default: a random 20 %% "
        "of --data that calibration/training never see; all of it for a method using none)",
    )
    shape_option(p, "the size of an input's dynamic dims where no data gives it (repeatable)")
    p.add_argument(
        "--allow-degraded",
        action="store_true",
        help="keep a result whose outputs collapsed against the base (any output, by the "
        "rules of its kind: constant, cosine < 0.9, top-1 agreement < 70 %%, ...; a layer "
        "pruned to zero) or that is larger than its base, instead of failing",
    )
    p.add_argument(
        "--output-kind",
        action="append",
        default=[],
        metavar="NAME=KIND",
        help=f"judge output NAME as KIND ({', '.join(KINDS)}) instead of the kind inferred "
        "from its name, shape and values (repeatable)",
    )
    p.add_argument(
        "--out", type=Path, required=True, help="output file (a directory with --recipe)"
    )
    p.add_argument("--arch", metavar="MODULE:FACTORY", help="torch factory for a .pt MODEL")
    p.add_argument(
        "--latency", action="store_true", help="measure batch-1 latency against the base"
    )
    p.add_argument("--threads", type=int, default=1, help="runtime threads for latency (default 1)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved latency rounds (default 3)")
    p.add_argument(
        "--min-seconds",
        type=float,
        default=LATENCY_SECONDS,
        metavar="S",
        help=f"timed running per model in each latency round, at least (default "
        f"{LATENCY_SECONDS:g})",
    )
    p.add_argument(
        "--runs", type=int, default=200, help="and at least this many timed runs (default 200)"
    )
    q = p.add_argument_group("quantization")
    q.add_argument(
        "--calibration",
        choices=CALIBRATIONS,
        default="minmax",
        help="int8-static: how activation ranges are set from --data (default minmax)",
    )
    q.add_argument(
        "--per-tensor", action="store_true", help="per-tensor weights (default per channel)"
    )
    q.add_argument(
        "--full-range",
        action="store_true",
        help="8-bit ONNX INT8 weights (default 7: x86 CPUs without VNNI saturate 8-bit "
        "products; full range only for ARM or VNNI boards)",
    )
    q.add_argument(
        "--no-fallback",
        action="store_true",
        help="never keep collapsing nodes in float (default: INT8 that collapses the model "
        "keeps the fewest nodes in float that hold it, with INT8 weights where that holds; "
        "fp16 keeps nodes whose activations leave float16's range in float32)",
    )
    q.add_argument(
        "--int8-io",
        action="store_true",
        help="TFLite int8-static: int8 inputs and outputs (default: float32 ones, as the base has)",
    )
    q.add_argument(
        "--exclude-node",
        action="append",
        default=[],
        metavar="NAME",
        help="keep this node in float (repeatable)",
    )
    q.add_argument(
        "--exclude-op",
        action="append",
        default=[],
        metavar="OP_TYPE",
        help="keep every node of this op type in float (repeatable)",
    )
    q.add_argument(
        "--calibration-samples",
        type=int,
        default=256,
        help="int8-static: rows of --data used for calibration (default 256)",
    )
    r = p.add_argument_group("pruning")
    r.add_argument(
        "--sparsity",
        type=float,
        default=0.5,
        help="fraction of weights (prune) or channels (prune-channels) to remove",
    )
    r.add_argument(
        "--importance",
        help=f"prune: {'/'.join(WEIGHT_IMPORTANCES)} (magnitude); "
        f"prune-channels: {'/'.join(CHANNEL_IMPORTANCES)} (l1)",
    )
    r.add_argument(
        "--sparsity-search",
        action="store_true",
        help="prune, prune-channels: --sparsity is a ceiling; keep the largest sparsity up to it "
        "that holds every output on rows of --data the final judgement never sees "
        "(generated inputs without --data): halved, then bisected, at most 4 prunings "
        "(each fine-tuned with --epochs); the report says which was kept. Not in a recipe chain",
    )
    r.add_argument("--scope", choices=SCOPES, default="global", help="prune: global or per layer")
    r.add_argument(
        "--accuracy-budget",
        type=float,
        metavar="PT",
        help="prune: largest sparsity (up to --sparsity) within this drop in points",
    )
    t = p.add_argument_group("training (fine-tuning and distillation)")
    t.add_argument("--epochs", type=int, help="fine-tuning epochs (default 0) / distillation (30)")
    t.add_argument("--lr", type=float, help="Adam learning rate (default 0.001)")
    t.add_argument(
        "--batch-size",
        type=int,
        help="rows per training step (default 8 when fine-tuning a pruned model, 32 to distill)",
    )
    t.add_argument(
        "--temperature", type=float, help="distill: softmax temperature of the KL term (default 4)"
    )
    t.add_argument("--alpha", type=float, help="weight of the KL term against cross-entropy")
    t.add_argument("--target-accuracy", type=float, help="stop early at this held-out metric")
    t.add_argument("--max-seconds", type=float, help="stop training after this long")
    t.add_argument(
        "--val-fraction",
        type=float,
        help="share of the training rows held out to judge each epoch (default 0; distill 0.2)",
    )
    t.add_argument("--student", metavar="MODULE:FACTORY", help="distill: the student's factory")
    t.add_argument("--width", type=float, default=0.5, help="distill: derived student's width")
    p.set_defaults(handler=run)


def config_from_args(ns: argparse.Namespace) -> Any:
    """The config of ``--method`` from the options its config class has (others are
    ignored); training options are passed whenever given (a method that does not train
    refuses them)."""
    from edgeship.compress import config_from_dict, get_method

    method = get_method(ns.method)
    given = {
        "calibration": ns.calibration,
        "per_channel": not ns.per_tensor,
        "reduce_range": not ns.full_range,
        "fallback": not ns.no_fallback,
        "int8_io": ns.int8_io,
        "exclude_nodes": ns.exclude_node,
        "exclude_op_types": ns.exclude_op,
        "calibration_samples": ns.calibration_samples,
        "sparsity": ns.sparsity,
        "importance": ns.importance,
        "scope": ns.scope,
        "accuracy_budget_pt": ns.accuracy_budget,
        "sparsity_search": ns.sparsity_search or None,
        "student": ns.student,
        "width": ns.width,
    }
    fields = {f.name for f in dataclasses.fields(method.config) if f.init}
    spec: dict[str, Any] = {"method": ns.method}
    spec.update({k: v for k, v in given.items() if k in fields and v is not None})
    spec.update({k: getattr(ns, k) for k in _TRAIN if getattr(ns, k) is not None})
    return config_from_dict(spec)


def model_from_args(ns: argparse.Namespace) -> Any:
    if ns.arch is None:
        if ns.model.endswith(".pt"):
            raise UsageError(f"{ns.model} is a torch state dict: say which module with --arch")
        return Path(ns.model)
    from edgeship.compress.training.torch_model import TorchModel

    state = None if ":" in ns.model and not Path(ns.model).exists() else Path(ns.model)
    return TorchModel(ns.arch, state)


def run(ns: argparse.Namespace) -> int:
    """One target, opened here and closed at the end, serves every check of the command."""
    from edgeship.compress import CompressOptions, compress, load_recipe, run_recipe
    from edgeship.compress.guard import GuardPolicy
    from edgeship.models.kinds import parse_kinds

    model = model_from_args(ns)
    shapes = parse_shape_overrides(ns.shape)
    kinds = parse_kinds(ns.output_kind)
    guard = GuardPolicy(allow_degraded=ns.allow_degraded, output_kinds=kinds)
    if ns.recipe is not None:
        loaded = load_recipe(ns.recipe)
        recipe = dataclasses.replace(
            loaded,
            allow_degraded=ns.allow_degraded or loaded.allow_degraded,
            shapes=shapes,
            output_kinds={**loaded.output_kinds, **kinds},
        )
        with target_from_args(ns) as target, status_line(ns.json) as line:
            variants = _Variants(line)
            result = run_recipe(
                model,
                recipe,
                ns.data,
                ns.out,
                target,
                progress=None if ns.json else variants.start,
                eval_data=ns.eval_data,
                on_epoch=variants.epoch,
                on_step=variants.step,
            )
        status = _print_table(result.report, ns)
        made = [Path(r.path) for r in result.report.rows if r.error is None and r.name != "base"]
        print_next(ns, after_compress(Path(ns.model), made, ns.target))
        return status
    config = config_from_args(ns)
    with target_from_args(ns) as target, status_line(ns.json) as line:
        options = CompressOptions(
            target=target,
            latency=ns.latency,
            threads=ns.threads,
            latency_rounds=ns.rounds,
            latency_runs=ns.runs,
            latency_seconds=ns.min_seconds,
            shapes=shapes,
            guard=guard,
            on_epoch=lambda done: line.show(ns.method, _epoch(done), ticking=True),
            on_step=lambda text: line.show(ns.method, f"{text}...", ticking=True),
        )
        report = compress(model, config, ns.data, ns.out, options, eval_data=ns.eval_data).report
    if ns.json:
        print_json(report.to_dict())
    else:
        print(summary(report))
    print_next(ns, after_compress(Path(ns.model), [Path(report.model.path)], ns.target))
    return 0


def _print_table(report: Any, ns: argparse.Namespace) -> int:
    if ns.json:
        print_json(report.to_dict())
    else:
        print(report.to_markdown(), end="")
        print(f"written: {ns.out}/table.md, {ns.out}/table.json and one .json per variant")
    return 0 if all(r.error is None for r in report.rows) else 1


def summary(report: Any) -> str:
    """A human view of a :class:`~edgeship.compress.CompressionReport`."""
    b, m = report.base, report.model
    rows = [
        [
            "size",
            f"{b.size_bytes:,} B",
            f"{m.size_bytes:,} B",
            f"{m.size_bytes / b.size_bytes:.3f}×",
        ],
        [
            "deflated",
            f"{b.compressed_size_bytes:,} B",
            f"{m.compressed_size_bytes:,} B",
            f"{m.compressed_size_bytes / b.compressed_size_bytes:.3f}×",
        ],
        [
            "parameters",
            f"{b.parameters:,}",
            f"{m.parameters:,}",
            f"{m.parameters / max(b.parameters, 1):.3f}×",
        ],
        ["sparsity", f"{b.sparsity:.1%}", f"{m.sparsity:.1%}", ""],
    ]
    f = report.fidelity
    if f is not None and f.accuracy is not None and f.base_accuracy is not None:
        rows.append(
            [
                "accuracy (vs labels)",
                share_text(f.base_accuracy, f.samples, f.base_accuracy_ci),
                share_text(f.accuracy, f.samples, f.accuracy_ci),
                f"{0.0 - f.accuracy_drop_pt + 0.0:+.2f} pt",
            ]
        )
    if report.latency is not None:
        lat = report.latency
        rows.append(
            [
                f"p50 latency, batch 1 ({shapes_text(lat.input_shapes) or 'inputs as generated'})",
                f"{lat.base_p50_ms:.4f} ms",
                f"{lat.model_p50_ms:.4f} ms",
                speed_text(lat.speedup),
            ]
        )
    lines = [
        f"{report.method}: {m.path} (ran on {report.verified_on})",
        table(["metric", "base", "compressed", "ratio"], rows),
    ]
    if f is not None and not report.outputs:  # a report of schema 1: the first output only
        agree = (
            ""
            if f.top1_agreement is None
            else f"top-1 agreement (vs base) {share_text(f.top1_agreement, f.samples)}, "
        )
        cosine = "" if f.cosine is None else f"cosine {f.cosine:.4f}, "
        lines.append(f"{agree}{cosine}max abs diff {f.max_abs_diff:.4g} on {f.samples} samples")
    lines += [v.line() for v in report.outputs]
    if report.latency is not None and report.latency.detectable_slowdown is not None:
        from edgeship.compress.guard import SLOWER_POWER

        lat = report.latency
        lines.append(
            f"latency: {lat.rounds} paired rounds, slower in {lat.rounds_slower}; a slowdown "
            f"of {lat.detectable_slowdown:.1%} or more is refused "
            f"{SLOWER_POWER:.0%} of the time at the spread these rounds showed "
            f"({lat.round_spread:.1%}), a smaller one may pass unseen"
        )
    if f is not None and report.evaluation:
        lines.append(f"measured on {f.samples} samples: {report.evaluation}")
    lines += [f"interface: {c}" for c in report.interface]
    lines += [f"note: {n}" for n in report.notes]
    return "\n".join(lines)


def _epoch(done: EpochDone) -> str:
    """The epoch's figures, and the next one's number while it runs (the line ticks its
    seconds: an epoch of a convolutional model can take a minute)."""
    value = f"{done.value:.4f}" if done.metric == "cosine" else f"{done.value:.2%}"
    on = "held-out" if done.held_out else "training-set"
    text = f"epoch {done.epoch} of {done.epochs}: loss {done.loss:.4f}, {on} {done.metric} {value}"
    return text if done.epoch == done.epochs else f"{text}; epoch {done.epoch + 1} running"


class _Variants:
    """A recipe's progress: on a terminal, a bar of variants on ``line`` (with the epochs
    of one that trains); into a pipe or a log, one line per variant as it starts."""

    def __init__(self, line: StatusLine) -> None:
        self.line = line
        self.current = ""

    def start(self, done: int, total: int, name: str) -> None:
        if not self.line.live:
            if name:
                sys.stderr.write(f"[{done + 1}/{total}] {name}\n")  # the one starting now
            return
        self.current = f"{bar(done, total)} {done}/{total} {name or 'done'}"
        self.line.show("", self.current)
        if done == total:
            self.line.done("")

    def epoch(self, done: EpochDone) -> None:
        self.line.show("", f"{self.current}: {_epoch(done)}", ticking=True)

    def step(self, text: str) -> None:
        self.line.show("", f"{self.current}: {text}...", ticking=True)
