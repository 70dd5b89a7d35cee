"""The documentation says what the code does: every setting, signal and rejection reason is documented."""

from __future__ import annotations

from pathlib import Path

from microfleet.domain.telemetry import SIGNALS, RejectionReason
from microfleet.settings import Settings

DOCS = Path(__file__).parents[2] / "docs"


def test_every_setting_is_documented_with_its_help_text() -> None:
    page = (DOCS / "configuration.md").read_text()
    for name, field in Settings.model_fields.items():
        assert f"`MICROFLEET_{name.upper()}`" in page, name
        assert field.description, f"setting {name} has no help text"


def test_every_signal_and_its_range_is_in_the_protocol_page() -> None:
    page = (DOCS / "telemetry.md").read_text()
    for spec in SIGNALS:
        row = next((line for line in page.splitlines() if line.startswith(f"| `{spec.name}` |")), None)
        assert row is not None, spec.name
        if spec.min_value is not None:
            assert f"{spec.min_value:g} … {spec.max_value:g}" in row, spec.name


def test_every_rejection_reason_is_explained() -> None:
    page = (DOCS / "telemetry.md").read_text()
    for reason in RejectionReason:
        assert f"| `{reason.value}` |" in page, reason
