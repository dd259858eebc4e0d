"""The zoo, the local target and the CLI fixture are shared with tests/sdk/convert."""

from __future__ import annotations

from tests.sdk.convert.conftest import cli, digits, local, zoo

__all__ = ["cli", "digits", "local", "zoo"]
