"""``tune``: candidates, the interleaved measurement, the stored pick and its lookup."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edgeship.core.config import ProfileConfig
from edgeship.optimize import TuneConfig, TuneReport, tune
from edgeship.optimize._report import Trial
from edgeship.optimize.tune import candidates, choose, provider_chains, thread_counts
from edgeship.targets import LocalTarget
from edgeship.targets.settings import (
    LocalSettingsStore,
    RemoteSettingsStore,
    StoredSettings,
    apply_stored,
)
from edgeship_runtime.backends import SessionOptions
from edgeship_runtime.errors import UsageError
from edgeship_runtime.measure import MeasurePolicy
from edgeship_runtime.model import sha256_file

CPU, CUDA, TRT = "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"
QUICK = TuneConfig(policy=MeasurePolicy(warmup=1, runs=3, min_seconds=0), rounds=1, threads=(1,))


def test_thread_counts() -> None:
    assert thread_counts(1) == [1]
    assert thread_counts(4) == [1, 2, 4]
    assert thread_counts(6, profile_threads=6) == [1, 2, 4, 6]
    assert thread_counts(16, profile_threads=3) == [1, 2, 3, 4, 8, 16]


def test_provider_chains_follow_the_profile() -> None:
    jetson = (TRT, CUDA, CPU)
    assert provider_chains(jetson, [TRT, CUDA, CPU]) == [(TRT, CUDA, CPU), (CUDA, CPU), (CPU,)]
    assert provider_chains(jetson, [CUDA, CPU]) == [(CUDA, CPU), (CPU,)]
    assert provider_chains((CPU,), [CPU]) == [(CPU,)]


def test_candidates_per_backend() -> None:
    ort = candidates("onnxruntime", [1, 2], [(CPU,)], ["sequential", "parallel"])
    assert len(ort) == 4 and {c.execution_mode for c in ort} == {"sequential", "parallel"}
    assert candidates("tflite", [1, 2], [(CPU,)], ["parallel"]) == [
        SessionOptions(threads=1),
        SessionOptions(threads=2),
    ]


def _trial(threads: int, rounds: list[float], error: str = "") -> Trial:
    return Trial(
        threads,
        [CPU],
        "sequential",
        statistics.median(rounds) if rounds else float("inf"),
        0.0,
        rounds,
        error,
    )


def test_choose_takes_only_a_clear_win() -> None:
    default = _trial(0, [1.0, 1.0, 1.0])
    clear = _trial(2, [0.5, 0.6, 0.55])
    assert choose(default, [_trial(1, [0.9, 0.9, 0.9]), clear], 1.03) == (clear, "")
    thin, why = choose(default, [_trial(1, [0.99, 0.98, 0.99])], 1.03)
    assert thin is default and "no candidate beat the defaults by 3%" in why
    majority = _trial(4, [0.5, 1.2, 0.6, 1.3, 0.7])  # faster in 3 of 5 rounds
    assert choose(_trial(0, [1.0] * 5), [majority], 1.03) == (majority, "")
    fickle2 = _trial(4, [0.5, 1.2, 0.6, 1.3])
    kept, why = choose(_trial(0, [1.0] * 4), [fickle2], 1.03)
    assert kept.threads == 0 and "faster in only 2 of 4 rounds" in why
    failed, why = choose(default, [_trial(1, [], "no such provider")], 1.03)
    assert failed is default and "every candidate failed" in why


def test_config_refusals() -> None:
    with pytest.raises(UsageError, match="--rounds must be at least 1"):
        TuneConfig(rounds=0)
    with pytest.raises(UsageError, match="execution modes must be among"):
        TuneConfig(modes=("async",))
    with pytest.raises(UsageError, match=r"--min-gain must be at least 1\.0"):
        TuneConfig(min_gain=0.9)


def test_tune_stores_the_pick_and_lookup_uses_it(
    zoo, local: LocalTarget, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGESHIP_CACHE", str(tmp_path))
    model = zoo.path("mlp.onnx")
    report = tune(model, local, QUICK)
    assert report.profile == "generic-x86_64" and report.backend == "onnxruntime"
    assert [t.label() for t in report.trials] == [
        "threads=1 providers=CPU mode=sequential",
        "threads=1 providers=CPU mode=parallel",
    ]
    assert report.gain >= 1.0 and report.best.p50_ms <= report.default.p50_ms
    assert TuneReport.from_json(report.to_json()) == report
    stored_path = tmp_path / "settings" / f"{sha256_file(str(model))}.json"
    assert report.stored_at == str(stored_path) and stored_path.is_file()

    config = apply_stored(local.settings_store(), model, ProfileConfig())
    assert (
        config.session
        == StoredSettings.from_dict(json.loads(stored_path.read_text())).session_options()
    )
    given = ProfileConfig(session=SessionOptions(threads=2))
    assert apply_stored(local.settings_store(), model, given) is given  # the user's choice wins
    other = apply_stored(local.settings_store(), zoo.path("cnn.onnx"), ProfileConfig())
    assert other.session == SessionOptions()  # nothing stored for that model
    tflite_only = ProfileConfig(backend="tflite")
    assert apply_stored(local.settings_store(), model, tflite_only).session == SessionOptions()


def test_local_store_ignores_bad_files(tmp_path: Path) -> None:
    store = LocalSettingsStore(tmp_path)
    sha = "ab" * 32
    assert store.read(sha) is None
    store.path(sha).write_text("{not json")
    assert store.read(sha) is None
    store.path(sha).write_text(json.dumps({"schema": "other/1"}))
    assert store.read(sha) is None
    settings = StoredSettings(model_sha256=sha, backend="onnxruntime", threads=2)
    store.write(settings)
    assert store.read(sha) == settings
    with pytest.raises(ValueError, match="not a sha256"):
        store.path("../../etc/passwd")


class FakeDeployStore:
    """What RemoteSettingsStore uses of a DeployStore, over a dict."""

    class _Layout:
        def path(self, *parts: str) -> str:
            return "/root/.edgeship/" + "/".join(parts)

    class _Conn:
        def __init__(self, files: dict[str, bytes]) -> None:
            self.files = files

        def sftp(self) -> Any:
            return self

        def posix_rename(self, a: str, b: str) -> None:
            self.files[b] = self.files.pop(a)

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.layout = self._Layout()
        self.conn = self._Conn(self.files)
        self.made: list[tuple[str, ...]] = []

    def makedirs(self, *parts: str) -> None:
        self.made.append(parts)

    def write_file(self, path: str, data: bytes) -> None:
        self.files[path] = data

    def read_json(self, path: str) -> dict[str, Any]:
        return json.loads(self.files[path]) if path in self.files else {}


def test_remote_store_writes_under_the_deploy_root() -> None:
    fake = FakeDeployStore()

    store = RemoteSettingsStore(fake)  # type: ignore[arg-type]
    settings = StoredSettings(model_sha256="cd" * 32, backend="tflite", threads=4)
    where = store.write(settings)
    assert where == f"/root/.edgeship/settings/{'cd' * 32}.json"
    assert list(fake.files) == [where] and fake.made == [("settings",)]
    assert store.read("cd" * 32) == settings
    assert isinstance(LocalTarget().settings_store(), LocalSettingsStore)


@pytest.mark.slow
def test_cli_tune(
    cli: Callable[..., int],
    zoo,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EDGESHIP_CACHE", str(tmp_path))
    assert (
        cli(
            "tune",
            zoo.path("cnn.onnx"),
            "--threads",
            "1",
            "--modes",
            "sequential",
            "--runs",
            "3",
            "--warmup",
            "1",
            "--rounds",
            "1",
            "--no-store",
            "--min-seconds",
            "0",
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "threads=1 providers=CPU mode=sequential" in text and "not stored" in text
    assert not (tmp_path / "settings").exists()
    assert cli("tune", zoo.path("cnn.onnx"), "--threads", "1,x") == 2
    assert "--threads takes comma-separated integers" in capsys.readouterr().err
