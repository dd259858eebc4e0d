"""Every module says what it offers: an ``__all__`` whose names it defines or imports."""

from __future__ import annotations

import ast
import importlib

import pytest

from tests.sdk.test_layers import SDK, module_name


def _modules() -> list[str]:
    found = []
    for path in sorted(SDK.rglob("*.py")):
        tree = ast.parse(path.read_text())
        defines = any(
            isinstance(n, ast.FunctionDef | ast.ClassDef | ast.Assign | ast.AnnAssign)
            for n in tree.body
        )
        if defines:
            found.append(module_name(path))
    return found


@pytest.mark.parametrize("name", _modules())
def test_the_module_declares_its_public_names(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what it lacks: {missing}"
