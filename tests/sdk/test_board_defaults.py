"""A board profile's defaults apply only when the caller asked for no particular session."""

from __future__ import annotations

from pathlib import Path

from edgeship.core.config import ProfileConfig
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
