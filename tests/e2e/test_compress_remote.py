"""``edgeship compress --target DEVICE`` through the real testbed: the target options every
device command takes are honoured, and one runtime on the device serves the whole run.

Runtime starts are counted on the device itself: ``--python`` names a wrapper in the
device user's home that appends its arguments to a log and then execs the device's
Python. Every runtime start is ``PYTHON <zipapp> serve``, so the log's lines ending in
``serve`` are exactly the runtimes this command started there.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from edgeship.compress import CompressionReport, RecipeReport
from edgeship.compress._api import SEARCH_CALLS
from tests.e2e.conftest import cli
from tools.testbed import DEVICE_PYTHON, Testbed
from tools.testbed.device import Device

STARTS_LOG = "python-starts.log"


def counting_python(testbed: Testbed, dev: Device) -> str:
    """Install the wrapper (and an empty log) in ``dev``'s home; its device path."""
    wrapper = dev.home / "counting-python.sh"
    script = (
        "#!/bin/sh\n"
        f'printf "%s\\n" "$*" >> "$HOME/{STARTS_LOG}"\n'
        f'exec {shlex.quote(str(DEVICE_PYTHON))} "$@"\n'
    )
    install = f'cat > "$1" && chmod 755 "$1" && : > "$HOME/{STARTS_LOG}"'
    testbed.run_as(dev, ["sh", "-c", install, "sh", str(wrapper)], input=script, check=True)
    return str(wrapper)


def runtime_starts(testbed: Testbed, dev: Device) -> list[str]:
    """The wrapper's log lines that started a runtime (``... serve``)."""
    log = testbed.run_as(dev, ["cat", str(dev.home / STARTS_LOG)], check=True).stdout
    return [line for line in log.splitlines() if line.endswith(" serve")]


def test_compress_on_a_device_honours_target_options_and_starts_one_runtime(
    clean_testbed: Testbed, zoo: Path, tmp_path: Path
) -> None:
    dev = clean_testbed.devices[0]
    python = counting_python(clean_testbed, dev)
    out = tmp_path / "mlp.int8.onnx"
    done = cli(
        clean_testbed,
        "compress",
        str(zoo / "mlp.onnx"),
        "--method",
        "int8-dynamic",
        "--data",
        str(zoo / "digits_test.npz"),
        "--out",
        str(out),
        "--target",
        dev.name,
        "--python",
        python,
        "--latency",
        "--rounds",
        "1",
        "--runs",
        "20",
        "--connect-timeout",
        "5",
        "--timeout",
        "120",
        "--json",
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    report = CompressionReport.from_dict(json.loads(done.stdout))
    assert report.method == "int8-dynamic" and out.is_file()
    assert report.verified_on == dev.name
    assert report.latency is not None and report.latency.target == dev.name
    # held out: every row but the SEARCH_CALLS the INT8 fallback may search on
    assert report.fidelity is not None and report.fidelity.samples == 360 - SEARCH_CALLS
    assert "held out" in report.evaluation
    # one verification run and two latency rounds (one discarded) of two models each
    starts = runtime_starts(clean_testbed, dev)
    assert len(starts) == 1, starts


def test_a_recipe_on_a_device_runs_every_variant_in_one_runtime_without_data(
    clean_testbed: Testbed, zoo: Path, tmp_path: Path
) -> None:
    dev = clean_testbed.devices[1]
    python = counting_python(clean_testbed, dev)
    recipe = tmp_path / "variants.toml"
    recipe.write_text(
        # 20 runs time nothing reliably: a variant slower by noise is kept, not refused
        "[options]\nlatency_rounds = 1\nlatency_runs = 20\nallow_degraded = true\n\n"
        '[variants.half]\nmethod = "fp16"\n\n'
        '[variants.dyn]\nmethod = "int8-dynamic"\n'
    )
    done = cli(
        clean_testbed,
        "compress",
        str(zoo / "mlp.onnx"),
        "--recipe",
        str(recipe),
        "--out",
        str(tmp_path / "variants"),
        "--target",
        dev.name,
        "--python",
        python,
        "--json",
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    report = RecipeReport.from_dict(json.loads(done.stdout))
    assert [r.name for r in report.rows] == ["base", "half", "dyn"]
    for name in ("half", "dyn"):
        variant = CompressionReport.from_json((tmp_path / "variants" / f"{name}.json").read_text())
        assert variant.verified_on == dev.name
        assert variant.latency is not None and variant.latency.target == dev.name
    starts = runtime_starts(clean_testbed, dev)
    assert len(starts) == 1, starts
