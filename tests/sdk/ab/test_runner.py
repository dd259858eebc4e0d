"""The runner's host-side checks: names, inputs and data per model, signatures; the plan
of sessions for a precision."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeship.ab.gates import MaxAccuracyDrop
from edgeship.ab.runner import (
    ABConfig,
    Prepared,
    _plan,
    check_signatures,
    model_names,
    prepare,
)
from edgeship.ab.schedule import MAX_SESSIONS, Schedule
from edgeship.ab.stats import plan_sessions
from edgeship.core.errors import ModelError, UsageError
from edgeship_runtime.backends import SessionOptions
from edgeship_runtime.signature import Signature, TensorSpec


def test_model_names_are_unique_and_readable() -> None:
    paths = [Path("a/cnn.onnx"), Path("cnn.tflite"), Path("a/cnn.onnx"), Path("mlp.onnx")]
    assert model_names(paths) == ["cnn.onnx", "cnn.tflite", "cnn.onnx#2", "mlp"]
    assert model_names([Path("fp32.onnx"), Path("int8.onnx")]) == ["fp32", "int8"]


@pytest.fixture
def models(tmp_path: Path) -> list[Path]:
    paths = [tmp_path / "a.onnx", tmp_path / "b.onnx", tmp_path / "c.onnx"]
    for path in paths:
        path.write_bytes(b"not read here")
    return paths


def test_prepare_spreads_one_file_over_every_model(models: list[Path], tmp_path: Path) -> None:
    data = tmp_path / "d.npz"
    np.savez(data, input=np.zeros((2, 3), np.float32), labels=np.array([0, 1]))
    config = ABConfig(data=(data,), gates=(MaxAccuracyDrop(1.0),))
    prep = prepare(models[0], models[1:], config)
    assert prep.names == ["a", "b", "c"] and prep.inputs == [None] * 3
    assert all(d is not None and set(d) == {"input", "labels"} for d in prep.data)
    assert not prep.per_model_inputs


def test_prepare_refuses(models: list[Path], tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="a base and at least one variant"):
        prepare(models[0], [], ABConfig())
    with pytest.raises(ModelError, match="no such model file"):
        prepare(models[0], [tmp_path / "nope.onnx"], ABConfig())
    x = tmp_path / "x.npy"
    np.save(x, np.zeros(3, np.float32))
    with pytest.raises(UsageError, match="--inputs given 2 times for 3 models"):
        prepare(models[0], models[1:], ABConfig(inputs=(x, x)))
    with pytest.raises(UsageError, match=f"max-accuracy-drop needs labels, but {x} has no"):
        prepare(models[0], models[1:], ABConfig(data=(x,), gates=(MaxAccuracyDrop(1.0),)))


def sig(*inputs: tuple[str, tuple[object, ...], str]) -> Signature:
    specs = tuple(TensorSpec(n, tuple(s), d) for n, s, d in inputs)  # type: ignore[arg-type]
    return Signature(specs, (TensorSpec("y", (1,), "float32"),))


def prep(per_model: bool = False) -> Prepared:
    return Prepared(["base", "v"], [], [None, None], [None, None], per_model)


@pytest.mark.parametrize(
    ("other", "ok"),
    [
        (sig(("input", (1, 3, 8, 8), "float32")), True),  # fixed batch against dynamic
        (sig(("serving_default_x:0", (1, 3, 8, 8), "float32")), True),  # one input: by position
        (sig(("input", ("n", 3, 8, 8), "float32")), True),
        (sig(("input", (1, 3, 8, 8), "uint8")), False),
        (sig(("input", (1, 3, 16, 16), "float32")), False),
        (sig(("input", (1, 64), "float32")), False),
        (sig(("input", (1, 3, 8, 8), "float32"), ("mask", (1, 8), "bool")), False),
    ],
)
def test_signatures_must_match_unless_inputs_are_given_per_model(
    other: Signature, ok: bool
) -> None:
    base = sig(("input", ("batch", 3, 8, 8), "float32"))
    if ok:
        check_signatures(prep(), [base, other])
    else:
        with pytest.raises(UsageError, match="models have different input signatures"):
            check_signatures(prep(), [base, other])
    check_signatures(prep(per_model=True), [base, other])


def test_several_inputs_must_match_by_name() -> None:
    a = sig(("x", (1, 4), "float32"), ("y", (1, 4), "float32"))
    b = sig(("y", (1, 4), "float32"), ("x", (1, 4), "float32"))
    with pytest.raises(UsageError, match=r"base: x float32 \[1, 4\], y float32 \[1, 4\]"):
        check_signatures(prep(), [a, b])


def pilot(spread: float, sessions: int = 6, runs: int = 20) -> list[list[float]]:
    """Base and variant samples of ``sessions`` sessions whose log session ratios have
    standard deviation ``spread`` exactly (every run of a session alike)."""
    z = np.random.default_rng(0).standard_normal(sessions)
    ratios = np.exp(spread * (z - z.mean()) / z.std(ddof=1))
    level = np.exp(np.random.default_rng(1).normal(0, 0.05, sessions))  # cancels out
    return [
        [float(x) for x in np.repeat(level, runs)],
        [float(x) for x in np.repeat(level * ratios, runs)],
    ]


def test_precision_plans_from_the_pilots_ratios_and_says_how_long() -> None:
    config = ABConfig(schedule=Schedule(sessions=10, precision=0.02))
    total, text = _plan(pilot(0.02), [20] * 6, config, seconds_per_session=3.0)
    assert total == plan_sessions(0.02, 0.02, 0.05, least=10, most=MAX_SESSIONS)
    assert text == (
        f"precision 2 %: the first 6 sessions' ratios spread by 2.00 %; {total} sessions "
        f"resolve it: running {total - 6} more, about {3 * (total - 6):.0f} s"
    )
    quiet, _ = _plan(pilot(0.001), [20] * 6, config, seconds_per_session=3.0)
    assert quiet == 10  # never fewer than --sessions
    most, text = _plan(pilot(0.5), [20] * 6, config, seconds_per_session=3.0)
    assert most == MAX_SESSIONS and "even 200 sessions resolve only ±" in text
    assert f"running {MAX_SESSIONS - 6} more, about 9.7 min" in text


def test_sessions_pinned_to_cpus_run_one_thread_per_cpu() -> None:
    """ONNX Runtime's default (a thread per core) on one pinned CPU would queue its threads
    behind each other: the timing sessions get one thread per CPU, and the design says so."""
    config = ABConfig(schedule=Schedule(cpus=(0,)))
    assert config.interleave_config().session.threads == 1
    assert config.design().threads == 1 and ABConfig().design().threads == 0
    with pytest.raises(UsageError, match=r"^--threads 2 with --cpus 0 \(1 CPU\)"):
        ABConfig(schedule=Schedule(cpus=(0,)), session=SessionOptions(threads=2))
