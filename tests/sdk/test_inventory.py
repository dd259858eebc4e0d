"""The targets file's names: a typo of a device or group is told as one, with a suggestion
(the ssh config and DNS are asked in :func:`edgeship.api.check_target`: tests/sdk/test_api.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeship.core.errors import UsageError
from edgeship.targets.devices import Inventory, check_spelling, load_inventory, suggest

TARGETS = """
[devices.pi-kitchen]
host = "pi@192.0.2.5"

[devices.jetson-1]
host = "jetson-1"

[groups]
lab = ["pi-kitchen", "jetson-1"]
"""


@pytest.fixture
def inventory(tmp_path: Path) -> Inventory:
    path = tmp_path / "edgeship.toml"
    path.write_text(TARGETS)
    return load_inventory(path)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("pi-kitchn", "pi-kitchen"),
        ("pi_kitchen", "pi-kitchen"),
        ("jetson1", "jetson-1"),
        ("locl", "local"),
        ("pi-kitchen", None),  # a device
        ("lab", None),  # a group
        ("local", None),
        ("pi@pi-kitchn", None),  # user@host is never a device name
        ("pi-kitchn:2222", None),
        ("camera-7", None),  # close to nothing
    ],
)
def test_suggest(inventory: Inventory, name: str, expected: str | None) -> None:
    assert suggest(inventory, name) == expected


def test_a_typo_is_refused_with_the_name_it_resembles(inventory: Inventory) -> None:
    with pytest.raises(UsageError) as caught:
        check_spelling(inventory, "lab,pi-kitchn", lambda name: False)
    assert str(caught.value) == "unknown target 'pi-kitchn'; did you mean 'pi-kitchen'?"
    assert caught.value.details == {"target": "pi-kitchn", "suggestion": "pi-kitchen"}


def test_a_close_name_that_ssh_or_dns_knows_is_left_alone(inventory: Inventory) -> None:
    asked: list[str] = []
    check_spelling(inventory, "pi-kitchn,jetson-1", lambda name: asked.append(name) or True)
    assert asked == ["pi-kitchn"]  # only the suspicious name is looked up
