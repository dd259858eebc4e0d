"""The host's half of the measurement ops: per-operator profiles, the device's state, the
cooldown wait, and verdicts through a real local runtime."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeship.core.config import ProfileConfig
from edgeship.core.errors import UsageError
from edgeship.targets import wire
from edgeship.targets.cooldown import CooldownPolicy, wait_cool
from edgeship.targets.local import LocalTarget
from edgeship_runtime.backends import SessionOptions
from edgeship_runtime.measure import InterleavePolicy, MeasurePolicy
from edgeship_runtime.opprofile import OpsPolicy
from edgeship_runtime.report import DeviceState

QUICK = ProfileConfig(
    policy=MeasurePolicy(warmup=2, runs=10, min_seconds=0), session=SessionOptions(threads=1)
)


@pytest.fixture(scope="module")
def local() -> Iterator[LocalTarget]:
    with LocalTarget() as target:
        yield target


def test_requests_carry_the_new_arguments() -> None:
    request = wire.profile("m1", ProfileConfig(policy=MeasurePolicy(steady=False, energy=False)))
    assert (request.args["steady"], request.args["energy"]) == (False, False)
    ops = wire.profile_ops("m1", OpsPolicy(runs=7, warmup=2, trace=True), ProfileConfig(seed=3))
    assert ops.op == "profile_ops"
    assert {k: ops.args[k] for k in ("handle", "runs", "warmup", "trace", "seed")} == {
        "handle": "m1", "runs": 7, "warmup": 2, "trace": True, "seed": 3,
    }  # fmt: skip
    assert wire.conditions().op == "conditions"


def test_profile_with_ops_and_verdict(local: LocalTarget, state_onnx: Path) -> None:
    report = local.profile(state_onnx, QUICK, ops=OpsPolicy(runs=5, warmup=1))
    assert report.validity is not None and report.validity.verdict in ("stable", "unstable")
    assert report.energy is not None
    ops = report.ops
    assert ops is not None and ops.available and ops.runs == 5 and ops.nodes
    assert ops.trace is None
    again = type(report).from_json(report.to_json())
    assert again.ops == ops and again.validity == report.validity


def test_loaded_profile_ops_with_a_trace(local: LocalTarget, add_onnx: Path) -> None:
    config = ProfileConfig(shapes={"x": (3, 4)}, session=SessionOptions(threads=1))
    with local.load(add_onnx, config) as loaded:
        ops = loaded.profile_ops(OpsPolicy(runs=3, warmup=0, trace=True))
    assert ops.available and ops.trace and ops.nodes[0].input_shapes[0] == [3, 4]


def test_conditions_are_typed(local: LocalTarget) -> None:
    assert isinstance(local.conditions(), DeviceState)


def test_interleave_gives_a_verdict_per_model(local: LocalTarget, add_onnx: Path) -> None:
    config = ProfileConfig(shapes={"x": (2, 4)}, session=SessionOptions(threads=1))
    with local.load(add_onnx, config) as a, local.load(add_onnx, config) as b:
        result = local.interleave([a, b], InterleavePolicy(warmup=1, block=3, blocks=2))
    assert len(result.validity) == 2
    assert all(v is not None and v.verdict in ("stable", "unstable") for v in result.validity)


class Heating:
    """A target whose hottest zone reads ``temps`` one after another."""

    name = "fake"

    def __init__(self, temps: list[float | None]) -> None:
        self.temps = temps
        self.reads = 0

    def conditions(self) -> DeviceState:
        value = self.temps[min(self.reads, len(self.temps) - 1)]
        self.reads += 1
        return DeviceState(temperature_c=value)


def test_cooldown_waits_until_below() -> None:
    target = Heating([72.0, 68.0, 61.0, 59.5])
    seen: list[float] = []
    done = wait_cool(
        target,  # type: ignore[arg-type]
        CooldownPolicy(below_c=60.0, poll_s=0.01),
        progress=lambda temp, waited, policy: seen.append(temp),
        sleep=lambda s: None,
    )
    assert (done.reached, done.start_c, done.end_c) == (True, 72.0, 59.5)
    assert seen == [72.0, 68.0, 61.0]


def test_cooldown_gives_up_at_its_timeout() -> None:
    target = Heating([80.0])
    policy = CooldownPolicy(below_c=50.0, timeout_s=0.05, poll_s=0.01)
    done = wait_cool(target, policy)  # type: ignore[arg-type]
    assert done.reached is False and done.end_c == 80.0 and done.waited_s >= 0.05


def test_cooldown_without_a_thermal_zone_does_not_wait() -> None:
    done = wait_cool(Heating([None]), CooldownPolicy(below_c=50.0))  # type: ignore[arg-type]
    assert done.reached is None and done.waited_s < 1


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [({"timeout_s": 0}, "timeout must be positive"), ({"poll_s": -1}, "interval must be positive")],
)
def test_bad_cooldown_policy(kwargs: dict[str, float], needle: str) -> None:
    with pytest.raises(UsageError, match=needle):
        CooldownPolicy(below_c=50.0, **kwargs)
