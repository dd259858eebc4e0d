"""A/B testing of model variants on devices: interleaved runs, statistics, gates, reports.

    from edgeship.ab import ABConfig, make_gate, run_ab, write_report

    config = ABConfig(data=(Path("test.npz"),), gates=(make_gate("min-speedup", 1.3),))
    report = run_ab("model.onnx", ["model.int8.onnx"], "pi", config)   # ABReport
    report.passed, report.devices[0].comparisons[0].verdict           # True, "faster"
    write_report(report, Path("ab-report"))                            # .json, .md, .html

Modules, one job each: :mod:`.schedule` (sessions, rounds, blocks), :mod:`.stats` (the
test and intervals), :mod:`.quality`, :mod:`.gates`, :mod:`.pareto`, :mod:`.analyze`
(raw measurements → :mod:`.result`, the typed ``edgeship.ab/1`` report), :mod:`.runner`
(the device I/O), and the views :mod:`.table`, :mod:`.report_md`, :mod:`.report_html`
with :mod:`.plots`. scipy and matplotlib are imported only when used (``edgeship[ab]``).
"""

from __future__ import annotations

from edgeship.ab.gates import (
    GATES,
    Gate,
    MaxAccuracyDrop,
    MaxMemoryRatio,
    MaxSizeRatio,
    MinAgreement,
    MinSpeedup,
    make_gate,
    parse_gate,
)
from edgeship.ab.reports import ReportFiles, write_report
from edgeship.ab.result import AB_SCHEMA, FASTER, NO_DIFFERENCE, SLOWER, ABReport
from edgeship.ab.runner import ABConfig, run_ab
from edgeship.ab.schedule import Schedule
from edgeship.ab.stats import StatsPolicy

__all__ = [
    "AB_SCHEMA",
    "FASTER",
    "GATES",
    "NO_DIFFERENCE",
    "SLOWER",
    "ABConfig",
    "ABReport",
    "Gate",
    "MaxAccuracyDrop",
    "MaxMemoryRatio",
    "MaxSizeRatio",
    "MinAgreement",
    "MinSpeedup",
    "ReportFiles",
    "Schedule",
    "StatsPolicy",
    "make_gate",
    "parse_gate",
    "run_ab",
    "write_report",
]
