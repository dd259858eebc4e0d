"""The attack table names tests that exist, and docs/security.md shows the table as it is."""

from __future__ import annotations

import re
from pathlib import Path

from tools.bench.attacks import ATTACKS, REPO, markdown


def test_every_row_names_a_test_that_exists() -> None:
    missing = []
    for attack in ATTACKS:
        path, name = attack.test.split("::")
        source = (REPO / path).read_text() if (REPO / path).exists() else ""
        if not re.search(rf"^(    )?def {re.escape(name)}\(", source, re.M):
            missing.append(attack.test)
    assert not missing, missing
    assert len({a.test for a in ATTACKS}) == len(ATTACKS), "a test stands for one attack"


def test_at_least_thirty_attacks_are_tried() -> None:
    assert len(ATTACKS) >= 30


def test_docs_show_the_table_as_it_is() -> None:
    page = (Path(REPO) / "docs" / "security.md").read_text()
    assert markdown(ATTACKS) in page, "run: python tools/bench/attacks.py --markdown"
