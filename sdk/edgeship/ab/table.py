"""Rows of the A/B report's tables, and the terminal view built from them.

Markdown and HTML use the same rows (:mod:`.report_md`, :mod:`.report_html`): every view
shows the same figures, formatted once here. Memory columns are MiB (2**20 bytes), as the
report's ``*_mb`` fields are.
"""

from __future__ import annotations

from collections.abc import Sequence

from edgeship.ab.pareto import model_objectives
from edgeship.ab.result import (
    UNSTABLE_SHARE,
    ABReport,
    Comparison,
    Conditions,
    DeviceAB,
    Interval,
    OpsComparison,
    OpTypeDiff,
    SessionValidity,
)
from edgeship.core.views import Rows, text_table
from edgeship.models.estimate import share_text
from edgeship_runtime.guards import explain
from edgeship_runtime.opprofile import summary_line as ops_summary
from edgeship_runtime.report import DeviceState, TensorSummary
from edgeship_runtime.signature import format_dims

__all__ = [
    "TEXT_COLUMNS",
    "VALIDITY_NOTE",
    "Rows",
    "change_text",
    "comparison_rows",
    "detectable_note",
    "detectable_text",
    "device_heading",
    "device_name",
    "front_line",
    "gate_rows",
    "input_text",
    "inputs_heading",
    "inputs_text",
    "model_rows",
    "model_validity_lines",
    "ops_heading",
    "ops_lines",
    "ops_reconciliation",
    "ops_rows",
    "pooled_rows",
    "render",
    "sessions_text",
    "size_text",
    "unchecked_line",
    "validity_lines",
    "validity_rows",
    "validity_summary",
    "verdict",
]

TEXT_COLUMNS = frozenset(
    [
        "model",
        "role",
        "inputs",
        "variant",
        "verdict",
        "gate",
        "target",
        "result",
        "op type",
        "change",
        "unstable models",
        "governor",
        "throttling",
        "reasons",
    ]
)
"""Columns aligned left; the others hold numbers and align right."""

VALIDITY_NOTE = (
    "The runtime judges each session's timed window: a CPU governor other than "
    "'performance', a CPU clock or clock cap that moved, a throttle event, a power-mode "
    "change or frequent preemptions of the runtime (another process on its CPUs) is a "
    "reason, as is a spread or a tail of the runs too wide to trust."
)
"""What a validity section rests on, said once under it in either report."""


def _num(value: float | None, fmt: str = ".3f") -> str:
    return "-" if value is None else format(value, fmt)


def _ci(ci: Interval, fmt: str = ".3f") -> str:
    return f"[{ci.low:{fmt}}, {ci.high:{fmt}}]"


def size_text(size_bytes: int) -> str:
    for unit, scale in (("MiB", 2**20), ("KiB", 2**10)):
        if size_bytes >= scale:
            return f"{size_bytes / scale:.1f} {unit}"
    return f"{size_bytes} B"


def device_name(device: DeviceAB) -> str:
    return str(device.target.get("name", "?"))


def input_text(tensor: TensorSummary) -> str:
    """``x: 1×1×8×8 float32``: one array as it was fed."""
    return f"{tensor.name}: {format_dims(tensor.shape)} {tensor.dtype}"


def inputs_text(inputs: Sequence[TensorSummary]) -> str:
    """Every array a model was fed; ``-`` where the report does not say (schema 1.0)."""
    return ", ".join(input_text(t) for t in inputs) or "-"


def inputs_heading(device: DeviceAB) -> str:
    """The inputs every session fed: once when every model got the same, else per model."""
    texts = [inputs_text(m.inputs) for m in device.models]
    if len(set(texts)) == 1:
        return f"inputs {texts[0]}"
    return "inputs " + "; ".join(f"{m.name} {t}" for m, t in zip(device.models, texts, strict=True))


def _conditions(before: Conditions, after: Conditions) -> str:
    parts = []
    if before.temperature_c is not None or after.temperature_c is not None:
        parts.append(f"{_num(before.temperature_c, '.1f')} → {_num(after.temperature_c, '.1f')} °C")
    if before.cpu_freq_mhz is not None or after.cpu_freq_mhz is not None:
        parts.append(f"{_num(before.cpu_freq_mhz, '.0f')} → {_num(after.cpu_freq_mhz, '.0f')} MHz")
    return ", ".join(parts) or "temperature and clock not readable"


def device_heading(device: DeviceAB, report: ABReport) -> str:
    d = report.design
    env = device.environment
    where = f"{env.hostname} · {env.arch} · {env.cpu_model}" if env else "?"
    return (
        f"{device_name(device)}: {where}; {sessions_text(device, report)}, threads "
        f"{d.threads or 'default'}; {inputs_heading(device)}; "
        f"{_conditions(device.before, device.after)}"
    )


def sessions_text(device: DeviceAB, report: ABReport) -> str:
    """``10 sessions, each at least 1 s per model in blocks of 10 (5230-6110 runs per
    model and session)``: what the sessions asked for and what they held."""
    d = report.design
    runs = device.models[0].session_runs if device.models else []
    sessions = len(device.models[0].session_medians_ms) if device.models else d.sessions
    each = f"at least {d.min_seconds:g} s per model" if d.min_seconds else f"{d.rounds} rounds"
    held = ""
    if runs:
        low, high = min(runs), max(runs)
        held = f" ({low if low == high else f'{low}-{high}'} runs per model and session)"
    return f"{sessions} sessions, each {each} in blocks of {d.block}{held}"


def model_rows(device: DeviceAB) -> Rows:
    headers = ["model", "role", "inputs", "size", "p50 ms", "p90 ms", "p99 ms",
               "session medians std %", "peak RSS MiB", "load Δ MiB",
               "accuracy (vs labels)"]  # fmt: skip
    rows = []
    for m in device.models:
        acc = "-"
        if m.accuracy is not None:
            acc = share_text(m.accuracy.accuracy, m.accuracy.n, m.accuracy.ci)
        rows.append(
            [
                m.name,
                m.role,
                inputs_text(m.inputs),
                size_text(m.size_bytes),
                f"{m.latency.p50_ms:.4f}",
                f"{m.latency.p90_ms:.4f}",
                f"{m.latency.p99_ms:.4f}",
                _num(None if m.session_spread is None else 100 * m.session_spread, ".2f"),
                _num(m.memory.peak_rss_mb if m.memory else None, ".1f"),
                _num(m.memory.load_delta_mb if m.memory else None, ".1f"),
                acc,
            ]
        )
    return headers, rows


def comparison_rows(device: DeviceAB) -> Rows:
    headers = ["variant", "speedup [CI]", "p", "p Holm", "verdict", "detectable", "size ×",
               "memory ×", "acc. drop pp", "agreement (vs base)", "max |Δ|", "cosine"]  # fmt: skip
    rows = []
    for c in device.comparisons:
        a = c.agreement
        rows.append(
            [
                c.variant,
                f"{c.speedup:.3f}× {_ci(c.speedup_ci)}",
                f"{c.p_value:.3g}",
                _num(c.p_value_holm, ".3g"),
                c.verdict,
                detectable_text(c),
                f"{c.size_ratio:.3f}",
                _num(c.memory_ratio),
                _num(c.accuracy_drop_pp, ".2f"),
                "-" if a is None else share_text(a.top1, a.n, a.top1_ci),
                "-" if a is None else f"{a.max_abs_diff:.3g}",
                "-" if a is None else f"{a.cosine_mean:.5f}",
            ]
        )
    return headers, rows


def front_line(device: DeviceAB) -> str:
    """``Pareto front (latency, size, memory): a, b``: the objectives it was taken over
    (accuracy only where every model has labelled accuracy) and the models on it."""
    objectives = ", ".join(o.label for o in model_objectives(device.models))
    return f"Pareto front ({objectives}): {', '.join(device.pareto_front)}"


def detectable_text(c: Comparison) -> str:
    """The smallest change of the median the test could have caught (80 % power), from
    the std of the session medians."""
    if c.min_detectable_change is None:
        return "none" if c.p_value_holm is not None else "-"
    return f"±{100 * c.min_detectable_change:.1f}%"


def validity_summary(device: DeviceAB) -> str:
    """``validity: 9/10 sessions stable: the measurement is stable``."""
    stable = sum(v.verdict == "stable" for v in device.validity)
    text = f"validity: {stable}/{len(device.validity)} sessions stable"
    if device.stable is None:
        return text
    verdict = "stable" if device.stable else "UNSTABLE"
    return (
        f"{text}: the measurement is {verdict} (unstable when more than "
        f"{UNSTABLE_SHARE:.0%} of the sessions are)"
    )


def model_validity_lines(device: DeviceAB) -> list[str]:
    """One line per model judged unstable in some session (models that share the very
    same account share a line): in how many, the causes in words and the remedy (the
    sessions' every reason is in the reports)."""
    by_text: dict[str, list[str]] = {}
    for m in device.models:
        sessions = [v for v in device.validity if v.models.get(m.name, "stable") != "stable"]
        if not sessions:
            continue
        causes = [c for v in sessions for c in v.causes.get(m.name, [])]
        why = explain(causes) or "; ".join(sessions[0].reasons[:1])
        text = f"unstable in {len(sessions)}/{len(device.validity)} sessions: {why}"
        by_text.setdefault(text, []).append(m.name)
    return [f"{', '.join(names)}: {text}" for text, names in by_text.items()]


def unchecked_line(device: DeviceAB) -> str | None:
    return f"unchecked on this device: {', '.join(device.unchecked)}" if device.unchecked else None


def validity_rows(device: DeviceAB) -> Rows:
    """Per session: its verdict, the models judged unstable, the warm-up, the device
    around the window (heat, clock, CPU governors, throttling, the runtime's preemptions
    and its threads' wait for a CPU) and every reason (the reports show them all, the
    terminal three)."""
    headers = ["session", "verdict", "unstable models", "warm-up runs", "°C before → after",
               "MHz before → after", "governor", "throttling", "preemptions",
               "waited for a CPU", "reasons"]  # fmt: skip
    rows = [
        [
            str(v.session + 1),
            v.verdict,
            ", ".join(n for n, verdict in v.models.items() if verdict != "stable") or "-",
            _num(v.warmup_runs, "d"),
            _moved(v, "temperature_c", ".1f"),
            _moved(v, "cpu_freq_mhz", ".0f"),
            *_device_cells(v),
            "; ".join(v.reasons) or "-",
        ]
        for v in device.validity
    ]
    return headers, rows


def _device_cells(v: SessionValidity) -> list[str]:
    """The governor(s), throttling, preemptions and the wait for a CPU around the window;
    ``-`` each where the report has no device state (an older runtime or file)."""
    before = v.before.device if v.before else None
    after = v.after.device if v.after else None
    if before is None or after is None:
        return ["-", "-", "-", "-"]
    return [
        _governors(before, after),
        _throttling(before, after),
        _preemptions(before, after),
        _waited(before, after),
    ]


def _governors(before: DeviceState, after: DeviceState) -> str:
    """``performance``, or ``ondemand → performance`` where it changed."""
    was, now = ", ".join(before.governors) or "-", ", ".join(after.governors) or "-"
    return was if was == now else f"{was} → {now}"


def _throttling(before: DeviceState, after: DeviceState) -> str:
    """The throttle events the kernel counted in the window (x86) and a Pi's
    ``get_throttled`` bits before → after; ``-`` where neither can be read."""
    parts = []
    if before.throttle_counts and after.throttle_counts:
        rose = sum(
            max(n - before.throttle_counts[cpu], 0)
            for cpu, n in after.throttle_counts.items()
            if cpu in before.throttle_counts
        )
        parts.append(f"events +{rose}")
    if after.rpi_throttled is not None:
        was = "-" if before.rpi_throttled is None else f"{before.rpi_throttled:#x}"
        parts.append(f"Pi {was} → {after.rpi_throttled:#x}")
    return ", ".join(parts) or "-"


def _preemptions(before: DeviceState, after: DeviceState) -> str:
    """``1203 → 1250 (+47)``: the runtime process's involuntary context switches."""
    if before.preemptions is None or after.preemptions is None:
        return "-"
    moved = after.preemptions - before.preemptions
    return f"{before.preemptions} → {after.preemptions} (+{moved})"


def _waited(before: DeviceState, after: DeviceState) -> str:
    """``0.004 s (0.4 %)``: how long the runtime's threads waited for a CPU in the window
    (their run-queue delay), and its share of the window."""
    wait = after.cpu_wait_since(before)
    if wait is None:
        return "-"
    waited, seconds = wait
    return f"{waited:.3f} s ({100 * waited / seconds:.1f} %)"


def _moved(v: SessionValidity, what: str, fmt: str) -> str:
    before = getattr(v.before, what) if v.before else None
    after = getattr(v.after, what) if v.after else None
    return "-" if before is None and after is None else f"{_num(before, fmt)} → {_num(after, fmt)}"


def validity_lines(device: DeviceAB) -> list[str]:
    """The device's verdict, then one line per model judged unstable in some session
    (its causes and the remedy); the reports list every session."""
    if not device.validity:
        return []
    lines = [validity_summary(device), *(f"  {line}" for line in model_validity_lines(device))]
    unchecked = unchecked_line(device)
    return [*lines, f"  {unchecked}"] if unchecked else lines


def detectable_note(device: DeviceAB) -> list[str]:
    """The smallest change these sessions resolve, and what it rests on; why a comparison
    could detect no difference at all, when one could not; the plan, if one was made."""
    comparisons = device.comparisons
    lines = [f"plan: {device.plan}"] if device.plan else []
    found = [c for c in comparisons if c.min_detectable_change is not None]
    if found:
        widest = max(found, key=lambda c: c.min_detectable_change or 0.0)
        sessions = len(device.models[0].session_medians_ms)
        spread = "" if widest.ratio_spread is None else f" {100 * widest.ratio_spread:.2f} %"
        lines.append(
            f"smallest detectable change ±{100 * (widest.min_detectable_change or 0.0):.1f} % "
            f"(80 % power; from the std of the {sessions} session ratios{spread})"
        )
    if any(c.min_detectable_change is None and c.p_value_holm is not None for c in comparisons):
        lines.append(
            "detectable 'none': with these sessions the test cannot reach its level (after "
            "Holm's correction over the variants): give more --sessions"
        )
    return lines


def ops_rows(diff: OpsComparison, base: str) -> Rows:
    """Per op type: its time and share of the operators' time in each model, the change;
    last, all operators together (the op types sum to it: see :class:`OpProfile`)."""
    v = diff.variant
    headers = ["op type", f"{base} ms", f"{base} %", f"{v} ms", f"{v} %", "Δ ms", "change"]
    rows = [
        [
            r.op_type,
            f"{r.base_ms:.4f}",
            _num(None if r.base_share is None else 100 * r.base_share, ".1f"),
            f"{r.variant_ms:.4f}",
            _num(None if r.variant_share is None else 100 * r.variant_share, ".1f"),
            f"{r.delta_ms:+.4f}",
            change_text(r, base, v),
        ]
        for r in diff.rows
    ]
    if diff.base_ops_ms is not None and diff.variant_ops_ms is not None:
        delta = diff.variant_ops_ms - diff.base_ops_ms
        change = "slower" if delta > 0 else "faster" if delta < 0 else "same"
        total = [f"{diff.base_ops_ms:.4f}", "100.0", f"{diff.variant_ops_ms:.4f}", "100.0"]
        rows.append(["all operators", *total, f"{delta:+.4f}", change])
    return headers, rows


def change_text(row: OpTypeDiff, base: str, variant: str) -> str:
    """``faster``/``slower``/``same``, or which model alone has the op type."""
    if row.base_nodes == 0:
        return f"only in {variant}"
    if row.variant_nodes == 0:
        return f"only in {base}"
    return "slower" if row.delta_ms > 0 else "faster" if row.delta_ms < 0 else "same"


def ops_heading(diff: OpsComparison, base: str) -> str:
    """What the diff compares and the operators' totals, or why there is no diff."""
    head = f"per op type, {diff.variant} against {base}"
    if diff.note or diff.base_ops_ms is None or diff.variant_ops_ms is None:
        return f"{head}: {diff.note}"
    return f"{head} (operators {diff.base_ops_ms:.4f} → {diff.variant_ops_ms:.4f} ms)"


def ops_reconciliation(device: DeviceAB) -> list[str]:
    """Per model profiled (``--ops``): its operators plus the time outside them against
    its end-to-end time without the profiler, or why it has no per-operator times."""
    return [f"{m.name}: {ops_summary(m.ops)}" for m in device.models if m.ops is not None]


def ops_lines(device: DeviceAB) -> list[str]:
    """Per variant, where its time went against the base's, per op type."""
    base = device.models[0].name
    checks = [f"  {c}" for c in ops_reconciliation(device)]
    lines = ["per-operator profiles, ms per run:", *checks, ""] if checks else []
    for diff in device.op_diffs:
        table = [text_table(ops_rows(diff, base), TEXT_COLUMNS)] if diff.rows else []
        lines += [ops_heading(diff, base) + (":" if diff.rows else ""), *table, ""]
    return lines


def pooled_rows(report: ABReport) -> Rows:
    headers = ["variant", "devices", "speedup [CI]", "p", "verdict"]
    rows = [
        [
            p.variant,
            str(len(p.devices)),
            f"{p.speedup:.3f}× {_ci(p.speedup_ci)}",
            f"{p.p_value:.3g}",
            p.verdict,
        ]
        for p in report.pooled
    ]
    return headers, rows


def gate_rows(report: ABReport) -> Rows:
    headers = ["gate", "target", "variant", "observed", "threshold", "margin", "result"]
    rows = [
        [
            g.gate,
            g.target,
            g.variant,
            "-" if g.observed is None else f"{g.observed:.4g} {g.unit}",
            f"{g.threshold:g} {g.unit}",
            "-" if g.margin is None else f"{g.margin:+.4g}",
            "pass" if g.passed else "FAIL",
        ]
        for g in report.gates
    ]
    return headers, rows


def render(report: ABReport) -> str:
    """The terminal view: per device its models and comparisons, then pooled and gates."""
    parts: list[str] = []
    for device in report.devices:
        parts += [
            device_heading(device, report),
            text_table(model_rows(device), TEXT_COLUMNS),
            "",
            text_table(comparison_rows(device), TEXT_COLUMNS),
            front_line(device),
            *detectable_note(device),
            *validity_lines(device),
            "",
            *ops_lines(device),
        ]
    if report.pooled:
        parts += ["pooled over devices:", text_table(pooled_rows(report), TEXT_COLUMNS), ""]
    parts += _failures_and_gates(report)
    return "\n".join(parts).rstrip()


def verdict(report: ABReport) -> tuple[str | None, str]:
    """The run's verdict for every view: (``"PASS"``/``"FAIL"``, what it rests on), or
    (None, ``"no gates set"``) when there was nothing to pass or fail; a verdict over an
    unstable measurement says so (the report's ``caveat``)."""
    checks, failed = len(report.gates), len(report.failed_gates())
    parts = [f"{checks - failed}/{checks} gate checks passed" if checks else "no gates set"]
    if report.failures:
        parts.append(f"{len(report.failures)} device(s) failed")
    if report.caveat:
        parts.append(report.caveat)
    if not checks and not report.failures:
        return None, ", ".join(parts)
    return ("PASS" if report.passed else "FAIL"), ", ".join(parts)


def _failures_and_gates(report: ABReport) -> Sequence[str]:
    lines = [f"device {f.target} failed: {f.type}: {f.message}" for f in report.failures]
    if report.gates:
        lines += [text_table(gate_rows(report), TEXT_COLUMNS)]
    state, detail = verdict(report)
    lines.append(f"{state}: {detail}" if state else detail)
    return lines
