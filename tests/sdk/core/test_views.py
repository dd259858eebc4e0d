"""The views every report shares: tables with every column named, in Markdown and HTML,
and the self-contained page."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from edgeship.cli.output import table
from edgeship.core.views import html_table, md_table, page
from tests.sdk.test_layers import SDK

TABLES = {"table", "_table", "text_table", "md_table", "html_table"}
"""The functions that lay out a table, whose first argument may be its headers."""


def _headers(tree: ast.AST) -> list[tuple[int, list[str]]]:
    """Every literal list of strings that is a table's headers: the first argument of a
    table function, or assigned to ``headers``/``head``."""
    found = []
    for node in ast.walk(tree):
        lists: list[ast.expr] = []
        if isinstance(node, ast.Call) and node.args:
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            if name in TABLES:
                lists.append(node.args[0])
        elif isinstance(node, ast.Assign) and any(
            getattr(t, "id", "") in ("headers", "head") for t in node.targets
        ):
            lists.append(node.value)
        for value in lists:
            if isinstance(value, ast.List) and all(
                isinstance(e, ast.Constant) and isinstance(e.value, str) for e in value.elts
            ):
                found.append((node.lineno, [e.value for e in value.elts]))  # type: ignore[attr-defined]
    return found


def test_every_table_the_sdk_prints_names_every_column() -> None:
    unnamed, seen = [], 0
    for path in sorted(SDK.rglob("*.py")):
        for line, headers in _headers(ast.parse(path.read_text())):
            seen += 1
            if any(not h.strip() for h in headers):
                unnamed.append(f"{path.relative_to(SDK)}:{line}: {headers}")
    assert seen > 10  # the scan finds the tables (profile, ab, compress, ls, probe, ...)
    assert not unnamed, "\n".join(unnamed)


@pytest.mark.parametrize("lay_out", [md_table, html_table, lambda rows: table(*rows)])
def test_a_table_with_an_unnamed_column_is_refused(lay_out: object) -> None:
    with pytest.raises(ValueError, match=r"table columns \[1\] have no name"):
        lay_out((["model", " "], [["a", "b"]]))  # type: ignore[operator]


def test_tables_in_markdown_and_html() -> None:
    rows = (["model", "p50 ms", "verdict"], [["a|b", "0.1", "stable"]])
    assert md_table(rows).splitlines() == [
        "| model | p50 ms | verdict |",
        "|---|---|---|",
        "| a\\|b | 0.1 | stable |",
    ]
    cells = html_table(rows, "t", text_columns={"model"})
    assert '<table id="t">' in cells and '<th class="t">model</th><th>p50 ms</th>' in cells
    assert '<td class="stable">stable</td>' in cells  # a verdict, coloured


def test_a_page_fetches_nothing(tmp_path: Path) -> None:
    text = page("<T>", ["<p>x</p>"])
    assert "<title>&lt;T&gt;</title>" in text and "<p>x</p>" in text
    assert "http" not in text and "src=" not in text
