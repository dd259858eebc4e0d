"""A board profile's defaults apply only when the caller asked for no particular session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edgeship.core.config import ProfileConfig
from edgeship.core.errors import UsageError
from edgeship.targets import LocalTarget
from edgeship.targets.profiles import BoardProfile, get_profile
from edgeship_runtime.backends import SessionOptions
from edgeship_runtime.measure import MeasurePolicy


class JetsonLike(LocalTarget):
    def board_profile(self) -> BoardProfile | None:
        return get_profile("jetson-orin-nano")


def test_board_defaults_fill_an_unspecified_session(add_onnx: Path) -> None:
    config = JetsonLike().settings_for(add_onnx, ProfileConfig())
    assert config.session.providers[:2] == ("TensorrtExecutionProvider", "CUDAExecutionProvider")
    assert config.session.threads == 6


def test_an_explicit_session_wins_over_the_board(add_onnx: Path) -> None:
    mine = ProfileConfig(session=SessionOptions(threads=1))
    assert JetsonLike().settings_for(add_onnx, mine).session == SessionOptions(threads=1)


def test_local_has_no_board_defaults(add_onnx: Path) -> None:
    assert LocalTarget().settings_for(add_onnx, ProfileConfig()).session == SessionOptions()


def test_jetson_profile_on_a_cpu_only_machine_still_runs_on_the_cpu(add_onnx: Path) -> None:
    with JetsonLike() as target:
        report = target.profile(add_onnx, ProfileConfig(policy=MeasurePolicy(min_seconds=0)))
    assert report.backend.providers == ["CPUExecutionProvider"]


def test_pinned_to_fewer_cpus_than_the_boards_threads_runs_one_thread_per_cpu(
    add_onnx: Path,
) -> None:
    """Six threads of a Jetson's default on two CPUs would queue behind each other (and
    the verdict would blame other work): the session gets one thread per CPU."""
    pinned = ProfileConfig(policy=MeasurePolicy(cpus=(0, 1)))
    assert JetsonLike().settings_for(add_onnx, pinned).session.threads == 2
    unpinned = LocalTarget().settings_for(add_onnx, ProfileConfig()).session
    assert unpinned.threads == 0  # the backend's default where nothing is pinned


def test_a_chosen_thread_count_above_the_pinned_cpus_is_refused_in_one_line(
    add_onnx: Path,
) -> None:
    chosen = ProfileConfig(session=SessionOptions(threads=4), policy=MeasurePolicy(cpus=(0,)))
    with pytest.raises(UsageError, match=r"^--threads 4 with --cpus 0 \(1 CPU\): .*--threads 1"):
        LocalTarget().settings_for(add_onnx, chosen)


def test_a_profile_pinned_to_one_cpu_reports_one_thread(add_onnx: Path) -> None:
    cpu = min(os.sched_getaffinity(0))
    policy = MeasurePolicy(min_seconds=0, runs=20, cpus=(cpu,))
    with LocalTarget() as target:
        report = target.profile(add_onnx, ProfileConfig(policy=policy))
    assert report.backend.threads == 1 and report.policy.cpus == [cpu]
