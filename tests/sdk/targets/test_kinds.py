"""Kinds of target: a registry, a toy kind added in one module, capabilities it lacks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import edgeship
from edgeship.core.config import ConnectOptions
from edgeship.core.errors import ConfigError, UsageError
from edgeship.targets import open_target, register_target_kind
from edgeship.targets.capabilities import deployer, prober, provisioner
from edgeship.targets.kinds import target_kinds
from tests.sdk.targets import toy

toy.register()


def _targets_file(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / "edgeship.toml"
    path.write_text(f'[devices.toybox]\nkind = "{kind}"\nhost = "{tmp_path / "device"}"\n')
    return path


def test_a_kind_added_in_one_module_profiles_through_the_public_api(
    tmp_path: Path, add_onnx: Path
) -> None:
    options = ConnectOptions(targets_file=_targets_file(tmp_path, "toy"))
    with open_target("toybox", options) as target:
        assert isinstance(target, toy.DirectoryTarget)
        report = edgeship.profile(add_onnx, target=target, runs=5, warmup=1, min_seconds=0)
        outputs = target.run(add_onnx, {"x": np.zeros((2, 4), np.float32)})
        assert target.runtime_starts == 1  # profile and run shared one runtime
    assert report.latency_ms.n == 5
    assert report.target["kind"] == "toy" and report.target["name"] == "toybox"
    assert report.target["model_path"] == str(tmp_path / "device" / "add.onnx")
    assert report.model.path == str(add_onnx)  # the user's name for it
    assert (tmp_path / "device" / "add.onnx").read_bytes() == add_onnx.read_bytes()
    assert target.staged == ["add.onnx"]  # staged once per session, not once per load
    np.testing.assert_array_equal(outputs["y"], np.ones((2, 4), np.float32))


def test_a_kind_without_deploy_probe_or_setup_says_so(tmp_path: Path) -> None:
    options = ConnectOptions(targets_file=_targets_file(tmp_path, "toy"))
    target = open_target("toybox", options)
    for require, verb in ((deployer, "deploy"), (prober, "probe"), (provisioner, "setup")):
        with pytest.raises(UsageError, match=f"toybox: a toy target cannot {verb}"):
            require(target)
    deployer(open_target("local"))  # local keeps deployments (tests/sdk/deploy)


def test_an_unknown_kind_names_the_known_ones(tmp_path: Path) -> None:
    options = ConnectOptions(targets_file=_targets_file(tmp_path, "adb"))
    with pytest.raises(ConfigError, match=r"device 'toybox': unknown kind 'adb' \(known: "):
        open_target("toybox", options)
    assert {"local", "ssh", "toy"} <= set(target_kinds())


def test_a_kind_registers_once() -> None:
    with pytest.raises(ValueError, match="'toy' is already registered"):
        register_target_kind("toy", lambda entry, context: open_target("local"))
