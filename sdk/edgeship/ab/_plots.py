"""The A/B report's figures, drawn with matplotlib's Agg renderer into PNG bytes
(:func:`edgeship.core.views.new_figure`: matplotlib imported only when a report is
written, ``pip install 'edgeship[ab]'``).
"""

from __future__ import annotations

from typing import Any

from edgeship.ab.gates import MinSpeedup
from edgeship.ab.result import ABReport, DeviceAB
from edgeship.ab.schedule import block_medians
from edgeship.ab.table import device_name
from edgeship.core.views import COLORS as _COLORS
from edgeship.core.views import Plot, new_figure, png, slug

__all__ = ["all_plots", "drift_plot", "latency_plot", "pareto_plot", "percent_axis", "ratio_plot"]

_PURPOSE = "writing an A/B report"


def latency_plot(device: DeviceAB) -> Plot:
    """Per model: the cumulative distribution of every timed run, tails included."""
    import numpy as np

    models = device.models
    fig = new_figure(8, 3.6, _PURPOSE)
    ax = fig.add_subplot()
    for m, color in zip(models, _COLORS * len(models), strict=False):
        a = np.sort(np.asarray(m.samples_ms))
        ax.step(a, np.arange(1, a.size + 1) / a.size, where="post", color=color, label=m.name)
        ax.axvline(m.latency.p50_ms, color=color, lw=0.8, ls=":")
    low = min(m.latency.min_ms for m in models)
    high = max(m.latency.max_ms for m in models)
    if low > 0 and high / low > 10:
        ax.set_xscale("log")
    ax.set_xlabel("latency per run (ms; dotted: medians)")
    ax.set_ylabel("fraction of runs ≤ x")
    ax.set_title(f"{device_name(device)}: latency distribution of every timed run")
    ax.legend(fontsize="small", loc="lower right")
    ax.grid(alpha=0.3)
    name = device_name(device)
    return Plot(f"latency-{slug(name)}", f"Latency distribution on {name}", png(fig))


def drift_plot(device: DeviceAB, block: int, sessions: int) -> Plot:
    """Per model: block medians in run order, sessions marked, to show drift."""
    fig = new_figure(8, 3.2, _PURPOSE)
    ax = fig.add_subplot()
    for m, color in zip(device.models, _COLORS * len(device.models), strict=False):
        medians = block_medians(m.samples_ms, block)
        ax.plot(range(len(medians)), medians, ".-", color=color, label=m.name, lw=1, ms=3)
    per_session = len(device.models[0].samples_ms) // block // sessions
    for s in range(1, sessions):
        ax.axvline(s * per_session - 0.5, color="0.8", lw=0.8)
    ax.set_xlabel("block (in run order; grey lines: a fresh load of every model)")
    ax.set_ylabel("block median (ms)")
    ax.set_title(f"{device_name(device)}: latency over the run")
    ax.legend(fontsize="small", ncol=min(4, len(device.models)))
    ax.grid(alpha=0.3)
    name = device_name(device)
    return Plot(f"drift-{slug(name)}", f"Latency over the run on {name}", png(fig))


def ratio_plot(report: ABReport) -> Plot:
    """Speedup (base median / variant median) with its interval, per device and pooled."""
    rows: list[tuple[str, float, float, float, str]] = []
    for device in report.devices:
        for c in device.comparisons:
            label = f"{c.variant} @ {device_name(device)}"
            rows.append((label, c.speedup, c.speedup_ci.low, c.speedup_ci.high, c.verdict))
    for p in report.pooled:
        ci = p.speedup_ci
        rows.append((f"{p.variant} pooled", p.speedup, ci.low, ci.high, p.verdict))
    fig = new_figure(8, 1.2 + 0.45 * max(1, len(rows)), _PURPOSE)
    ax = fig.add_subplot()
    colors = {"faster": "#2ca02c", "slower": "#d62728"}
    for y, (_, est, low, high, verdict) in enumerate(reversed(rows)):
        color = colors.get(verdict, "0.4")
        ax.errorbar([est], [y], xerr=[[est - low], [high - est]], fmt="o", color=color, capsize=4)
    ax.set_yticks(range(len(rows)), [r[0] for r in reversed(rows)])
    ax.axvline(1.0, color="0.3", ls="--", lw=1)
    minimum = [g.threshold for g in report.gates if g.gate == MinSpeedup.name]
    if minimum:
        ax.axvline(minimum[0], color="#d62728", ls=":", lw=1.2, label=f"gate {minimum[0]:g}×")
        ax.legend(fontsize="small")
    ax.set_xlabel(f"speedup = base median / variant median ({report.design.confidence:.0%} CI)")
    ax.set_title("Speedup with its confidence interval (green: faster, red: slower)")
    ax.grid(axis="x", alpha=0.3)
    return Plot("speedup", "Speedup and its interval", png(fig))


def pareto_plot(device: DeviceAB) -> Plot:
    """Latency against accuracy (or size, without labels); marker area ~ peak RSS."""
    models = device.models
    with_accuracy = all(m.accuracy is not None for m in models)
    fig = new_figure(7, 4.2, _PURPOSE)
    ax = fig.add_subplot()
    xs = [m.latency.p50_ms for m in models]
    if with_accuracy:
        ys = [100 * m.accuracy.accuracy for m in models if m.accuracy is not None]
    else:
        ys = [m.size_bytes / 2**20 for m in models]
        ax.set_ylabel("size on disk (MiB)")
    mems = [m.memory.peak_rss_mb if m.memory else 0.0 for m in models]
    top = max(mems) or 1.0
    sizes = [40 + 260 * (mem / top) ** 2 for mem in mems]
    on_front = [m.name in device.pareto_front for m in models]
    colors = ["#2ca02c" if f else "0.6" for f in on_front]
    ax.scatter(
        xs, ys, s=sizes, c=colors, alpha=0.8, edgecolors="black", linewidths=0.5, clip_on=False
    )
    for m, x, y in zip(models, xs, ys, strict=True):
        ax.annotate(m.name, (x, y), textcoords="offset points", xytext=(6, 6), fontsize="small")
    front = sorted((x, y) for x, y, f in zip(xs, ys, on_front, strict=True) if f)
    if len(front) > 1:
        ax.plot([p[0] for p in front], [p[1] for p in front], color="#2ca02c", lw=1, ls="--")
    if min(xs) > 0 and max(xs) / min(xs) > 20:
        ax.set_xscale("log")
    ax.margins(0.15)
    if with_accuracy:
        percent_axis(ax, "accuracy vs labels (%)")
    ax.set_xlabel("median latency (ms)")
    ax.set_title(f"{device_name(device)}: Pareto front (green; marker area ~ peak RSS)")
    ax.grid(alpha=0.3)
    name = device_name(device)
    return Plot(f"pareto-{slug(name)}", f"Pareto front on {name}", png(fig))


def percent_axis(ax: Any, label: str) -> None:
    """Name the y axis of a share in percent (accuracy vs labels, agreement vs base) and
    bound it to [0, 100] %: the margins that keep markers off the frame would otherwise
    carry the axis past 100 %. Call it after the points are drawn."""
    ax.set_ylabel(label)
    low, high = ax.get_ylim()
    ax.set_ylim(max(0.0, low), min(100.0, high))


def all_plots(report: ABReport) -> list[Plot]:
    """Every figure of the report: speedup first, then per device."""
    plots = [ratio_plot(report)] if report.devices else []
    for device in report.devices:
        plots.append(latency_plot(device))
        plots.append(drift_plot(device, report.design.block, report.design.sessions))
        plots.append(pareto_plot(device))
    return plots
