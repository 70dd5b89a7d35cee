"""What a car reported, as its users read it: the newest value of each signal and its positions."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class PositionPage:
    """One page of a vehicle's positions and where the next page starts (None: no more)."""

    positions: list[dict[str, Any]]
    next_from_ms: int | None


class ReportedTelemetry(Protocol):
    """The stored telemetry (``microfleet.store.telemetry_store.TelemetryStore``)."""

    def latest_state(self, vehicle_id: str) -> dict[str, Any] | None:
        """The newest value of every signal, each with the time it was measured (None: nothing yet)."""
        ...

    def latest_states(
        self, vehicle_ids: Sequence[str], signals: Collection[str] | None = None
    ) -> dict[str, dict[str, Any]]:
        """The latest state of each of these vehicles that has sent anything, keeping only ``signals``."""
        ...

    def positions(self, vehicle_id: str, from_ms: int, to_ms: int, limit: int) -> PositionPage:
        """Positions in ``[from_ms, to_ms)``, oldest first, at most ``limit`` per page."""
        ...


class VehicleService:
    """A vehicle's latest state and its positions, in pages no larger than the installation allows."""

    def __init__(self, telemetry: ReportedTelemetry, *, page_size_max: int) -> None:
        self._telemetry = telemetry
        self._page_size_max = page_size_max

    def latest_state(self, vehicle_id: str) -> dict[str, Any] | None:
        """The newest value of every signal of the vehicle (None until it has sent telemetry)."""
        return self._telemetry.latest_state(vehicle_id)

    def latest_states(
        self, vehicle_ids: Sequence[str], signals: Collection[str] | None = None
    ) -> dict[str, dict[str, Any]]:
        """The latest state of many vehicles at once (the caller has already chosen which it may see)."""
        return self._telemetry.latest_states(vehicle_ids, signals)

    def positions(self, vehicle_id: str, from_ms: int, to_ms: int, limit: int) -> PositionPage:
        """Positions in ``[from_ms, to_ms)``, oldest first; a page holds at most the configured maximum."""
        return self._telemetry.positions(vehicle_id, from_ms, to_ms, min(limit, self._page_size_max))
