"""Test configuration: markers come from the folder a test lives in (unit, integration, e2e)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

_TESTS = Path(__file__).parent

# pytest-xdist's workers start with COLUMNS=80, and Rich fixes a console's width from COLUMNS when the
# console is made (at import): drop it, so the CLI tests' own width (tests/e2e/command.py) applies.
os.environ.pop("COLUMNS", None)

# State Microfleet keeps outside the database (the key that seals command keys, store/key_file.py) goes
# to $XDG_STATE_HOME: every test process, and the servers and CLIs it starts, gets its own, never $HOME's.
os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="microfleet-test-state-")

# The CI machine has two cores shared with PostgreSQL and brokers: judge properties, not generation speed.
# `scripts/test` (what CI runs) takes the same examples on every run ("microfleet-repeatable"), so a red run
# is a change's doing; plain `pytest` draws new ones each time to explore ("microfleet").
settings.register_profile("microfleet", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("microfleet-repeatable", settings.get_profile("microfleet"), derandomize=True)
settings.load_profile(os.environ.get("MICROFLEET_HYPOTHESIS_PROFILE", "microfleet"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        kind = Path(item.fspath).relative_to(_TESTS).parts[0]
        if kind in {"unit", "integration", "e2e"}:
            item.add_marker(getattr(pytest.mark, kind))
