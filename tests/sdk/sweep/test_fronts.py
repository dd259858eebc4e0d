"""Pareto fronts of a sweep: per board with the base, across boards on relative figures."""

from __future__ import annotations

import pytest

from edgeship.sweep._fronts import across_boards, board_front
from edgeship.sweep._report import DONE, FAILED, Cell, ErrorInfo, VariantRecord
from tests.sdk.sweep.fakes import result


def _done(variant: str, board: str, speedup: float, size: int = 100, acc: float | None = None):
    return Cell(variant, board, DONE, result(speedup, size, acc))


def _variant(name: str, size: int) -> VariantRecord:
    return VariantRecord(name, "m", "f", DONE, size_bytes=size)


def test_a_board_front_holds_the_base_when_nothing_beats_it_everywhere() -> None:
    cells = [_done("quick-big", "b", 2.0, size=500), _done("slow-small", "b", 0.5, size=50)]
    front = board_front("b", cells)
    assert front.objectives == ["p50_ms", "size_bytes"]
    assert front.front == ["base", "quick-big", "slow-small"]  # base: 1 ms and 400 bytes
    dominated = board_front("b", [*cells, _done("both", "b", 3.0, size=10)])
    assert dominated.front == ["both"]


def test_accuracy_joins_the_objectives_only_when_every_point_has_it() -> None:
    cells = [_done("a", "b", 2.0, acc=0.9), _done("c", "b", 1.5, acc=None)]
    assert board_front("b", cells).objectives == ["p50_ms", "size_bytes"]
    with_acc = [_done("a", "b", 2.0, acc=0.5), _done("c", "b", 1.5, size=100, acc=0.99)]
    for c in with_acc:
        assert c.result is not None
        c.result.base_accuracy = 0.995  # the base: the most accurate, and the slowest
    front = board_front("b", with_acc)
    assert front.objectives == ["p50_ms", "size_bytes", "accuracy"]
    assert front.front == ["base", "a", "c"]


def test_a_board_without_results_has_an_empty_front() -> None:
    failed = Cell("a", "b", FAILED, error=ErrorInfo("ConnectError", "gone"))
    front = board_front("b", [failed])
    assert (front.front, front.done, front.failed, front.base_p50_ms) == ([], 0, 1, None)


def test_across_boards_uses_geometric_means_and_leaves_out_partial_variants() -> None:
    cells = [
        _done("a", "x", 2.0), _done("a", "y", 0.5),
        _done("b", "x", 1.5), _done("b", "y", 1.5),
        _done("c", "x", 4.0), Cell("c", "y", FAILED, error=ErrorInfo("RemoteTimeout", "t")),
    ]  # fmt: skip
    variants = [_variant("a", 100), _variant("b", 100), _variant("c", 10)]
    fleet = across_boards(["x", "y"], variants, cells)
    assert fleet.excluded == ["c"]  # one board only: a mean over it would flatter it
    points = {p.variant: p for p in fleet.points}
    assert points["a"].speedup_geomean == pytest.approx(1.0)
    assert (points["a"].speedup_min, points["a"].speedup_max) == (0.5, 2.0)
    assert points["b"].speedup_geomean == pytest.approx(1.5)
    assert fleet.objectives == ["speedup_geomean", "size_bytes"]
    assert fleet.front == ["b"]  # as small as a and faster; smaller and faster than base


def test_a_board_with_no_result_at_all_does_not_exclude_everyone() -> None:
    cells = [_done("a", "x", 2.0), Cell("a", "dead", FAILED, error=ErrorInfo("E", "m"))]
    fleet = across_boards(["x", "dead"], [_variant("a", 10)], cells)
    assert fleet.excluded == [] and fleet.front == ["a"]


def test_a_variant_slower_and_larger_than_the_base_is_never_on_a_front() -> None:
    """Most accurate of all, so nothing dominates it; slower and larger, it is left out,
    on a board and across boards."""
    cells = [_done("bloated", "b", 0.5, size=500, acc=0.99), _done("fast", "b", 2.0, acc=0.9)]
    for c in cells:
        assert c.result is not None
        c.result.base_accuracy = 0.95
    front = board_front("b", cells)
    assert front.objectives == ["p50_ms", "size_bytes", "accuracy"]
    assert front.front == ["base", "fast"]
    fleet = across_boards(["b"], [_variant("bloated", 500), _variant("fast", 100)], cells)
    assert fleet.front == ["fast"]
