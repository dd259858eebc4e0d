"""Board profiles name backends the runtime registers."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeship.core.errors import ConfigError
from edgeship.targets.profiles import load_profile, load_profiles
from edgeship_runtime.backends import backend_names

PROFILE = """
schema = "edgeship.target-profile/1"
name = "board"
arch = "aarch64"

[runtime]
backends = {backends}
"""


def test_shipped_profiles_name_registered_backends() -> None:
    for profile in load_profiles().values():
        assert set(profile.backends) <= set(backend_names()), profile.name


def test_an_unknown_backend_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "board.toml"
    path.write_text(PROFILE.format(backends='["tflite", "tensorrt"]'))
    with pytest.raises(ConfigError, match=r"unknown backend 'tensorrt' in \[runtime\] backends"):
        load_profile(path)
    path.write_text(PROFILE.format(backends='["tflite", "onnxruntime"]'))
    assert load_profile(path).backends == ("tflite", "onnxruntime")
