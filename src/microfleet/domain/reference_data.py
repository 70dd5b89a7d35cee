"""Where the cited reference data lives (vehicle catalogue, OpenStreetMap extracts, mobility, climate).

The folder is given by whoever starts Microfleet (the ``MICROFLEET_DATA_DIR_PATH`` setting, read by the
entry points); without one, ``../shared/data`` from the working directory, else beside the checkout.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_RELATIVE = Path("../shared/data")


def reference_data_dir(explicit: Path | None = None) -> Path:
    """The reference-data folder: ``explicit``, else the first of the defaults that exists."""
    if explicit is not None:
        return explicit
    beside_checkout = Path(__file__).resolve().parents[4] / "shared" / "data"
    for candidate in (DEFAULT_RELATIVE, beside_checkout):
        if candidate.is_dir():
            return candidate
    return DEFAULT_RELATIVE
