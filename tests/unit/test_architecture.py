"""The import-linter contracts in pyproject.toml bite: a copy of the package with one bad import fails them.

Each case copies ``src/microfleet`` and the ``[tool.importlinter]`` section of pyproject.toml into
``tmp_path``, breaks (or does not break) one rule, and runs ``lint-imports`` on the copy.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[2]
_PACKAGE = _ROOT / "src" / "microfleet"
_PYPROJECT = _ROOT / "pyproject.toml"
_CONTRACTS = [
    c["name"]
    for c in tomllib.loads(_PYPROJECT.read_text(encoding="utf-8"))["tool"]["importlinter"]["contracts"]
]
# what the lint-imports script runs (importlinter.cli has no ``__main__``)
_LINT_IMPORTS = "from importlinter.cli import lint_imports_command; lint_imports_command()"
LAYERS, SIM_PROTOCOLS_ONLY = _CONTRACTS[0], _CONTRACTS[1]


def _importlinter_section() -> str:
    """The ``[tool.importlinter]`` tables of pyproject.toml, as they are written there."""
    kept: list[str] = []
    inside = False
    for line in _PYPROJECT.read_text(encoding="utf-8").splitlines():
        header = re.match(r"^\[\[?([^\]]+)\]\]?\s*(#.*)?$", line)
        if header:
            inside = header.group(1).strip().startswith("tool.importlinter")
        if inside:
            kept.append(line)
    section = "\n".join(kept) + "\n"
    # The copy says exactly what pyproject.toml says, nothing lost at a table boundary.
    original = tomllib.loads(_PYPROJECT.read_text(encoding="utf-8"))["tool"]["importlinter"]
    assert tomllib.loads(section)["tool"]["importlinter"] == original
    return section


def _append(relative: str, line: str) -> Callable[[Path], None]:
    def change(package: Path) -> None:
        target = package / relative
        assert target.is_file(), f"{relative} is gone: pick another module for this case"
        with target.open("a", encoding="utf-8") as f:
            f.write(f"\n{line}\n")

    return change


def _create(relative: str, text: str) -> Callable[[Path], None]:
    def change(package: Path) -> None:
        (package / relative).write_text(text, encoding="utf-8")

    return change


def _unchanged(_package: Path) -> None:
    pass


# (change to the copy, expected exit status, text the report must hold, whitespace aside)
CASES = {
    "unchanged": (_unchanged, 0, [f"Contracts: {len(_CONTRACTS)} kept, 0 broken."]),
    "sim imports the store": (
        _append("sim/engine.py", "import microfleet.store.engine"),
        1,
        [
            "microfleet.sim is not allowed to import microfleet.store",
            "microfleet.sim.engine -> microfleet.store.engine",
            f"{LAYERS} BROKEN",
            f"{SIM_PROTOCOLS_ONLY} BROKEN",
        ],
    ),
    "domain imports settings": (
        _append("domain/drives.py", "from microfleet.settings import Settings"),
        1,
        [
            "microfleet.domain is not allowed to import microfleet.settings",
            "microfleet.domain.drives -> microfleet.settings",
            f"{LAYERS} BROKEN",
        ],
    ),
    "a module outside the layers": (
        _create("stray.py", '"""Not drawn in any layer."""\n'),
        1,
        ["The following modules are not listed as layers:", "- microfleet.stray", f"{LAYERS} BROKEN"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_layers_contract_bites(case: str, tmp_path: Path) -> None:
    change, expected_rc, expected_lines = CASES[case]
    package = tmp_path / "microfleet"
    shutil.copytree(_PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    config = tmp_path / "importlinter.toml"
    config.write_text(_importlinter_section(), encoding="utf-8")
    change(package)

    # PYTHONPATH comes before the venv's editable path, so grimp finds the copy, not src/.
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", _LINT_IMPORTS, "--no-cache", "--no-logo", str(config)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report = done.stdout + done.stderr
    assert done.returncode == expected_rc, report
    flat = " ".join(report.split())  # the report wraps long contract names at the terminal's width
    for line in expected_lines:
        assert " ".join(line.split()) in flat, f"{line!r} not in:\n{report}"
