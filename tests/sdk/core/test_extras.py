"""A missing optional package is one line naming the extra that installs it, at every
public entry point that needs one. Packages are hidden by ``sys.modules[name] = None``
(the import machinery then refuses them, as it does an absent package); the CLI cases run
in a fresh interpreter, where nothing heavy was imported before the package was hidden."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from edgeship.core.config import ConnectOptions
from edgeship.core.extras import EXTRA_OF, MissingExtra, import_optional, missing_extras
from tests.hidden import run_cli
from tools.zoo import build


def hide(monkeypatch: pytest.MonkeyPatch, *roots: str) -> None:
    """Make ``roots`` and their loaded submodules unimportable for the test."""
    for name in [n for n in sys.modules if n.partition(".")[0] in roots] + list(roots):
        monkeypatch.setitem(sys.modules, name, None)


def halted(module: str) -> str:
    return f"(import of {module} halted; None in sys.modules)"


def test_import_optional_names_purpose_package_and_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    hide(monkeypatch, "onnx2torch")
    with pytest.raises(MissingExtra) as info:
        import_optional("onnx2torch", "ONNX → TFLite")
    assert str(info.value) == (
        f"ONNX → TFLite needs onnx2torch: pip install 'edgeship[convert]' {halted('onnx2torch')}"
    )
    assert (info.value.package, info.value.extra) == ("onnx2torch", "convert")


def test_import_optional_returns_the_module() -> None:
    assert import_optional("json", "nothing") is sys.modules["json"]


def test_threads_importing_together_each_get_the_whole_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sweep's boards reach their first scipy.stats together: a thread must never get
    another's half-run module (it failed on a missing ``t`` so)."""
    (tmp_path / "slowpkg.py").write_text("import time\ntime.sleep(0.3)\nt = 'whole'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "slowpkg", raising=False)
    seen: list[object] = []

    def first_use() -> None:
        try:
            seen.append(import_optional("slowpkg", "a test", extra="dev").t)
        except AttributeError as exc:
            seen.append(exc)

    threads = [threading.Thread(target=first_use) for _ in range(4)]
    for i, thread in enumerate(threads):
        thread.start()
        if i == 0:
            time.sleep(0.1)  # the first is inside the module's code when the others ask
    for thread in threads:
        thread.join(timeout=10)
    assert seen == ["whole"] * 4


def test_missing_extras_maps_known_packages_and_passes_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hide(monkeypatch, "sklearn")

    @missing_extras()
    def needs_sklearn() -> None:
        import sklearn  # noqa: F401

    with pytest.raises(MissingExtra, match=r"^scikit-learn is not installed: .*\[torch\]'"):
        needs_sklearn()
    with pytest.raises(ModuleNotFoundError), missing_extras():
        import edgeship_no_such_module  # type: ignore[import-not-found]  # noqa: F401


def test_every_extra_named_exists_in_pyproject() -> None:
    import tomllib

    pyproject = Path(__file__).resolve().parents[3] / "pyproject.toml"
    extras = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]
    assert set(EXTRA_OF.values()) <= set(extras)


# One case per site that imports an optional package (each takes a scratch directory):
# (package hidden, call, message start).
def _litert(tmp_path: Path) -> object:
    from edgeship.convert._litert import import_litert_torch

    return import_litert_torch()


def _onnx2torch(tmp_path: Path) -> object:
    from edgeship.convert._onnx_tflite import import_onnx2torch

    return import_onnx2torch()


def _tf2onnx(tmp_path: Path) -> object:
    from edgeship.convert._tflite_onnx import _import_tf2onnx

    return _import_tf2onnx()


def _onnxslim(tmp_path: Path) -> object:
    from edgeship.optimize._graph import simplify

    return simplify(None)


def _fp16(tmp_path: Path) -> object:
    from edgeship.compress.quantization.onnx_fp16 import convert_fp16

    return convert_fp16(None, None, Path("unused.onnx"))  # type: ignore[arg-type]


def _tflite_quantizer(tmp_path: Path) -> object:
    from edgeship.compress import QuantizeConfig
    from edgeship.compress.methods import Job
    from edgeship.compress.quantization.tflite_int8 import quantize_tflite

    config = QuantizeConfig("int8-dynamic")
    return quantize_tflite(Job(tmp_path / "m.tflite", config, None, tmp_path / "q.tflite"))


def _torch_pruning(tmp_path: Path) -> object:
    from torch import nn

    from edgeship.compress.pruning.channels_torch import narrow

    return narrow(nn.Linear(2, 2), 0.5, "l1", None)  # type: ignore[arg-type]


def _matplotlib(tmp_path: Path) -> object:
    from edgeship.ab._plots import _PURPOSE
    from edgeship.core.views import new_figure

    return new_figure(1, 1, _PURPOSE)


def _scipy(tmp_path: Path) -> object:
    from edgeship.ab.stats import signed_rank

    return signed_rank([1.0, 2.0], [3.0, 4.0])


SITES = [
    ("litert_torch", _litert, "TFLite output needs litert-torch: pip install 'edgeship[tflite]'"),
    ("onnx2torch", _onnx2torch, "ONNX → TFLite needs onnx2torch: pip install 'edgeship[convert]'"),
    ("tf2onnx", _tf2onnx, "TFLite → ONNX needs tf2onnx: pip install 'edgeship[tflite-onnx]'"),
    ("onnxslim", _onnxslim, "the simplifier needs onnxslim: pip install 'edgeship[convert]'"),
    (
        "onnxconverter_common",
        _fp16,
        "fp16 needs onnxconverter-common: pip install 'edgeship[torch]'",
    ),
    (
        "ai_edge_quantizer",
        _tflite_quantizer,
        "TFLite quantization needs ai-edge-quantizer: pip install 'edgeship[tflite]'",
    ),
    (
        "torch_pruning",
        _torch_pruning,
        "pruning a torch model's channels needs torch-pruning: pip install 'edgeship[torch]'",
    ),
    (
        "matplotlib",
        _matplotlib,
        "writing an A/B report needs matplotlib: pip install 'edgeship[ab]'",
    ),
    ("scipy", _scipy, "computing A/B statistics needs scipy: pip install 'edgeship[ab]'"),
]


@pytest.mark.parametrize(("package", "call", "message"), SITES, ids=[s[0] for s in SITES])
def test_each_site_names_its_extra(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    package: str,
    call: Callable[[Path], object],
    message: str,
) -> None:
    hide(monkeypatch, package)
    with pytest.raises(MissingExtra) as info:
        call(tmp_path)
    assert str(info.value).startswith(message + " (")


def test_a_sweep_on_ray_without_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    from edgeship.core.errors import UsageError
    from edgeship.sweep._executor import open_executor

    hide(monkeypatch, "ray")
    with pytest.raises(
        UsageError, match=r"Ray is not installed here \(pip install 'edgeship\[ray\]'\)"
    ):
        open_executor("local", ConnectOptions())


def test_zoo_build_without_sklearn_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hide(monkeypatch, "sklearn")
    assert build.main(["--out", str(tmp_path), "--force"]) == 2
    assert capsys.readouterr().err == (
        "zoo: importing torch, ONNX and scikit-learn...\n"  # its progress, then one error
        "error: building the zoo needs scikit-learn: pip install 'edgeship[zoo]' "
        f"{halted('sklearn')}\n"
    )


def test_zoo_without_litert_torch_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    hide(monkeypatch, "litert_torch")
    assert build._import_litert_torch() == (
        None,
        "TFLite export of the zoo needs litert-torch: pip install 'edgeship[zoo]' "
        + halted("litert_torch"),
    )


def test_cli_compress_without_torch(add_onnx: Path, tmp_path: Path) -> None:
    """prune's runner imports torch at its top: the boundary translates it."""
    done = run_cli(
        ["torch"], "compress", add_onnx, "--method", "prune", "--sparsity", "0.5",
        "--out", tmp_path / "pruned.onnx",
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        f"error: torch is not installed: pip install 'edgeship[torch]' {halted('torch')}\n"
    )


def test_cli_convert_to_tflite_without_onnx2torch(add_onnx: Path, tmp_path: Path) -> None:
    done = run_cli(["onnx2torch"], "convert", add_onnx, tmp_path / "add.tflite")
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        "error: ONNX → TFLite needs onnx2torch: pip install 'edgeship[convert]' "
        f"{halted('onnx2torch')}\n"
    )
