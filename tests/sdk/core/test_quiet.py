"""quiet(): converters' chatter off the terminal, and the descriptors whole afterwards,
even when a sweep's threads enter and leave it in any order."""

from __future__ import annotations

import os
import threading
import warnings

import pytest

from edgeship.core.quiet import quiet


def _fds() -> tuple[tuple[int, int], tuple[int, int]]:
    return tuple((os.fstat(fd).st_dev, os.fstat(fd).st_ino) for fd in (1, 2))  # type: ignore[return-value]


@pytest.mark.parametrize("first_out", ["first in", "last in"])
def test_overlapping_blocks_on_two_threads_leave_the_descriptors_as_they_were(
    first_out: str,
) -> None:
    before, filters = _fds(), list(warnings.filters)
    a_in, b_in, a_may_leave, b_may_leave = (threading.Event() for _ in range(4))
    inside: list[bool] = []

    def block(entered: threading.Event, may_leave: threading.Event) -> None:
        with quiet():
            entered.set()
            inside.append(_fds() != before)
            os.write(1, b"chatter a converter writes from C++\n")
            may_leave.wait(5)

    a = threading.Thread(target=block, args=(a_in, a_may_leave))
    b = threading.Thread(target=block, args=(b_in, b_may_leave))
    a.start()
    a_in.wait(5)
    b.start()
    b_in.wait(5)
    first, second = (
        (a_may_leave, b_may_leave) if first_out == "first in" else (b_may_leave, a_may_leave)
    )
    first.set()
    (a if first_out == "first in" else b).join(5)
    assert _fds() != before  # the other block is still inside: still quiet
    second.set()
    a.join(5)
    b.join(5)
    assert inside == [True, True]
    assert _fds() == before and warnings.filters == filters


def test_a_nested_block_keeps_the_outer_one_quiet() -> None:
    before = _fds()
    with quiet():
        with quiet():
            pass
        assert _fds() != before
    assert _fds() == before
