"""An emulated 32-bit ARM board (armv7l), used as a user would: setup, deploy, profile,
run, and a clear refusal for a model it has no backend for.

The board is Debian bullseye for armhf under qemu-user (see ``tools/testbed/rootfs.py``),
as a 32-bit Raspberry Pi OS 11 is: Python 3.9 and apt's numpy, nothing for edgeship, no
board name. PyPI has neither numpy nor onnxruntime for it, only ``tflite-runtime``; so
setup keeps apt's numpy and the board runs TFLite models alone. Without its cached root
these tests skip on a developer machine (``python -m tools.testbed rootfs armv7l`` builds
it, minutes) and build it in CI, as test_arm.py does.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgeship.targets.profiles import get_profile
from tests.e2e.conftest import EMULATED_S, cli, cli_json, emulated_board
from tools.testbed import Testbed
from tools.zoo.build import tflite_logits

pytestmark = pytest.mark.arm
ARCH = "armv7l"
PROFILE = "generic-armv7l"


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    """One emulated armv7l board with nothing set up on it."""
    yield from emulated_board(ARCH, tmp_path_factory.mktemp("armv7"))


@pytest.fixture(scope="module")
def setup_json(board: Testbed) -> dict[str, Any]:
    """``edgeship setup BOARD``, as the README writes it: no --python."""
    result: dict[str, Any] = cli_json(board, "setup", board.devices[0].name)
    return result


def test_setup_keeps_apt_numpy_and_installs_tflite_runtime_from_pypi(
    board: Testbed, setup_json: dict[str, Any]
) -> None:
    assert setup_json["method"] == "venv-online" and setup_json["profile"] == PROFILE
    assert setup_json["notes"] == [
        f"board not recognised: using {PROFILE}; pass --profile to choose"
    ]
    assert setup_json["packages"] == list(get_profile(PROFILE).pip)
    assert setup_json["skipped"] == {}
    backends = setup_json["backends"]
    assert backends["tflite_runtime"]["available"] and not backends["onnxruntime"]["available"]
    dev, where = board.devices[0], "import numpy; print(numpy.__file__)"
    apt = board.run_as(dev, ["/usr/bin/python3", "-c", where])
    assert apt.stdout.startswith("/usr/lib/python3/dist-packages/")  # the board's own
    assert board.run_as(dev, [setup_json["python"], "-c", where]).stdout == apt.stdout
    # the release pip picked loads here (its native library, not only the package)
    board.run_as(dev, [setup_json["python"], "-c", "import tflite_runtime.interpreter"], check=True)


def test_deploy_profile_and_run_a_tflite_model(
    board: Testbed, setup_json: dict[str, Any], zoo: Path, tmp_path: Path
) -> None:
    name, model = board.devices[0].name, zoo / "mlp.tflite"
    (deployed,) = cli_json(board, "deploy", str(model), "--target", name, "--name", "digits")
    assert deployed["uploaded"] and deployed["version"] == "v0001"
    (report,) = cli_json(
        board, "profile", str(model), "--target", name, "--runs", "20", "--min-seconds", "0"
    )
    assert report["environment"]["arch"] == ARCH
    assert report["environment"]["python"].startswith("3.9.")
    assert report["backend"]["name"] == "tflite"
    assert report["latency_ms"]["n"] == 20 and report["latency_ms"]["p50"] > 0
    out, data = tmp_path / "y.npz", zoo / "digits_test.npz"
    cli_json(board, "run", str(model), "--target", name, "--inputs", str(data), "--out", str(out))
    with np.load(data) as inputs, np.load(out) as got:
        expected = tflite_logits(model, inputs["input"])
        np.testing.assert_allclose(got["logits"], expected, rtol=1e-5, atol=1e-5)


def test_an_onnx_model_is_refused_in_one_line_naming_the_board(
    board: Testbed, setup_json: dict[str, Any], zoo: Path
) -> None:
    name = board.devices[0].name
    done = cli(board, "profile", str(zoo / "mlp.onnx"), "--target", name, timeout=EMULATED_S)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert name in line and "no installed backend can run onnx models" in line
    assert "the board profile generic-armv7l has no backend for onnx models" in line
    assert "edgeship setup" not in line  # set up already: it cannot install one
