"""The progress line of ``profile``, ``ab`` and ``tune`` through the real command line on
``local``: on a terminal one updating line on stderr, ended by a newline; with ``--json``
or into a pipe, none."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest

from edgeship.cli.main import main
from edgeship.core.progress import CLEAR_LINE
from tests.runtime.parallel import helpers

Run = Callable[..., tuple[int, str]]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(params=["terminal", "pipe"])
def edgeship(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Run:
    """``main`` with stderr a terminal or a pipe; its exit status and its stderr."""

    monkeypatch.setenv("COLUMNS", "200")  # the terminal's width: lines are cut to it

    def run(*args: str | Path) -> tuple[int, str]:
        err = Terminal() if request.param == "terminal" else io.StringIO()
        monkeypatch.setattr("sys.stderr", err)
        monkeypatch.setattr("sys.stdout", io.StringIO())
        rc = main([str(a) for a in args])
        return rc, err.getvalue()

    return run


def _frames(err: str) -> list[str]:
    return [f for f in err.split(CLEAR_LINE) if f]


def _before_next(err: str) -> str:
    """``err`` up to the command's last line, ``next: ...`` (on a line of its own)."""
    rest, sep, last = err.rpartition("next: ")
    assert sep and last.endswith("\n") and last.count("\n") == 1, err
    return rest.removesuffix(CLEAR_LINE)


def _live(request: pytest.FixtureRequest) -> bool:
    return "terminal" in request.node.callspec.id


@pytest.mark.parametrize(
    ("options", "plan"),
    [
        (
            ["--runs", "5", "--min-seconds", "0.2"],
            "warm-up until steady, then at least 0.2 s and 5 timed runs",
        ),
        (
            ["--shards", "2", "--runs", "20", "--min-seconds", "0"],
            "one shard alone, then a stream of 20 requests over 2 shards",
        ),
    ],
    ids=["min-seconds", "shards"],
)
def test_profile_shows_its_plan_and_the_time_waited(
    edgeship: Run,
    add_onnx: Path,
    request: pytest.FixtureRequest,
    options: list[str],
    plan: str,
) -> None:
    args = [add_onnx, *options, "--warmup", "1", "--threads", "1"]
    rc, err = edgeship("profile", *args)
    assert rc == 0, err
    err = _before_next(err)
    if not _live(request):
        assert err == ""
        return
    frames = _frames(err)
    assert frames and all(f.startswith(f"local: add.onnx: {plan} · ") for f in frames)
    assert frames[-1].endswith(" s\n") and err.count("\n") == 1
    rc, err = edgeship("profile", *args, "--json")
    assert rc == 0 and err == ""


def test_profile_with_ops_shows_the_operator_phase(
    edgeship: Run, add_onnx: Path, request: pytest.FixtureRequest
) -> None:
    rc, err = edgeship(
        "profile", add_onnx, "--runs", "3", "--warmup", "1", "--ops", "--min-seconds", "0"
    )
    assert rc == 0, err
    phase = "local: add.onnx: per-operator profile, 3 runs · "
    assert any(f.startswith(phase) for f in _frames(err)) == _live(request)


def test_ab_shows_each_latency_session_and_memory_run(
    edgeship: Run, add_onnx: Path, request: pytest.FixtureRequest
) -> None:
    common = ["--runs", "20", "--sessions", "6", "--block", "5", "--warmup", "1",
              "--min-seconds", "0.01"]  # fmt: skip
    rc, err = edgeship("ab", add_onnx, add_onnx, *common)
    assert rc == 0, err
    if not _live(request):
        assert "latency session" not in err
        return
    shown = [f.split(" · ")[0] for f in _frames(_before_next(err)) if not f.startswith("note: ")]
    sessions = [f for f in dict.fromkeys(shown) if "latency session" in f]  # ticks redraw
    assert [f"local: latency session {i} of 6" for i in range(1, 7)] == sessions
    assert "local: memory: add.onnx (1 of 2)" in shown
    assert "local: memory: add.onnx#2 (2 of 2)" in shown
    rc, err = edgeship("ab", add_onnx, add_onnx, *common, "--json")
    assert rc == 0 and "latency session" not in err


def test_tune_shows_each_trial_and_its_settings(
    edgeship: Run, add_onnx: Path, request: pytest.FixtureRequest
) -> None:
    args = ["--threads", "1", "--modes", "sequential", "--providers", "CPUExecutionProvider"]
    quick = ["--runs", "3", "--warmup", "1", "--rounds", "2", "--no-store", "--min-seconds", "0"]
    rc, err = edgeship("tune", add_onnx, *args, *quick)
    assert rc == 0, err
    if not _live(request):
        assert err == ""
        return
    shown = [f.split(" · ")[0] for f in _frames(err)]
    assert shown == [
        "local: trial 1 of 4: threads=default providers=- mode=sequential",
        "local: trial 2 of 4: threads=1 providers=CPU mode=sequential",
        "local: trial 3 of 4: threads=default providers=- mode=sequential",
        "local: trial 4 of 4: threads=1 providers=CPU mode=sequential",
    ]
    assert err.endswith("\n") and err.count("\n") == 1
    rc, err = edgeship("tune", add_onnx, *args, *quick, "--json")
    assert rc == 0 and err == ""


def test_profile_of_a_pipeline_shows_its_stages_directory(
    edgeship: Run, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    chain = helpers.chain_model(tmp_path / "chain.onnx")
    stages = helpers.cut_model(chain, tmp_path / "chain-2", helpers.CUTS_2)
    rc, err = edgeship(
        "profile",
        chain,
        "--pipeline",
        stages,
        "--runs",
        "20",
        "--threads",
        "1",
        "--min-seconds",
        "0",
    )
    assert rc == 0, err
    plan = f"local: chain.onnx: a stream of 20 requests through the stages in {stages}, then "
    assert any(f.startswith(plan + "the unsplit model · ") for f in _frames(err)) == _live(request)
