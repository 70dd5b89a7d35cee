"""The charging worker: re-plans each fleet on a timer and at once on an event, and applies the plan.

Started by the API's lifespan (``microfleet serve``) on its event loop: the OCPP central system's sessions
live there, so profiles are sent from it; the planner and the stores run in threads (``asyncio.to_thread``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from microfleet.domain.charge_points import ChargePoint, StoredPlan
from microfleet.services.charge_points import ChargePointService, Deviation

if TYPE_CHECKING:
    from microfleet.services.charging import ChargeCommands, ChargingService, ChargingStorePort

log = logging.getLogger(__name__)


class ProfileApplier(Protocol):
    """Chargers that take a plan (``ingest.ocpp_central.OcppCentral``)."""

    async def apply_plan(self, plan: StoredPlan, points: Sequence[ChargePoint]) -> dict[str, str]:
        """Send the plan to its chargers; returns each order's answer."""
        ...


class ChargingWorker:
    """Re-plans each fleet every ``interval_s`` and at once on a deviation, and applies the plan."""

    def __init__(
        self,
        service: ChargingService,
        points: ChargePointService,
        store: ChargingStorePort,
        *,
        interval_s: float,
        poll_s: float = 30.0,
    ) -> None:
        self._service = service
        self._store = store
        self._interval_s = interval_s
        self._poll_s = min(poll_s, interval_s)
        self._seen: dict[str, str] = {}  # fleet -> its bookings' and tariff's digest at the last look
        self._pending: dict[str, str] = {}
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self.applier: ProfileApplier | None = None
        self.commands: ChargeCommands | None = None
        self.rounds = 0
        points.on_deviation(self.notify)

    def notify(self, deviation: Deviation) -> None:
        """Note a deviation (from any thread): its fleet is re-planned at once."""
        # Every kind that happened since the last round names the re-plan, the first first.
        kinds = self._pending.get(deviation.fleet_id, "").split(", ")
        if deviation.kind not in kinds:
            self._pending[deviation.fleet_id] = ", ".join([k for k in kinds if k] + [deviation.kind])
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def start(self, applier: ProfileApplier | None, commands: ChargeCommands | None = None) -> None:
        """Run on the current event loop (the API's lifespan); profiles to ``applier``, commands to cars."""
        self.applier = applier
        self.commands = commands
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop after the round in progress."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run_once(self, fleets: dict[str, str]) -> list[StoredPlan]:
        """Re-plan these fleets (fleet -> trigger) and apply each new plan."""
        plans = []
        for fleet_id, trigger in fleets.items():
            current = self._service.latest(fleet_id)
            plan = await asyncio.to_thread(self._service.replan, fleet_id, trigger)
            plans.append(plan)
            fresh = current is None or plan.plan_id != current.plan_id
            if self.applier is not None and (fresh or trigger != "periodic"):
                points = await asyncio.to_thread(
                    self._store.charge_points, [s.site_id for s in self._store.sites(fleet_id)]
                )
                await self.applier.apply_plan(plan, points)
            if self.commands is not None:
                await asyncio.to_thread(self._service.command_dumb_chargers, plan, self.commands)
        self.rounds += 1
        return plans

    def _changed_fleets(self) -> None:
        """Mark for a re-plan every fleet whose bookings or tariff changed since the last look."""
        for fleet_id in self._service.fleets():
            digest = self._service.event_inputs(fleet_id)
            if self._seen.get(fleet_id, digest) != digest:
                self._pending.setdefault(fleet_id, "booking or price")
            self._seen[fleet_id] = digest

    async def _run(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        next_round = loop.time() + self._interval_s
        while True:
            try:
                await asyncio.wait_for(
                    self._wake.wait(), timeout=max(0.0, min(self._poll_s, next_round - loop.time()))
                )
            except TimeoutError:
                try:
                    if loop.time() >= next_round:
                        next_round = loop.time() + self._interval_s
                        for fleet_id in await asyncio.to_thread(self._service.fleets):
                            self._pending.setdefault(fleet_id, "periodic")
                    await asyncio.to_thread(self._changed_fleets)
                except Exception:  # the store briefly unreachable: look again at the next poll
                    log.exception("the charging worker could not read the fleets; retrying")
            self._wake.clear()
            if not self._pending:
                continue
            fleets, self._pending = self._pending, {}
            try:
                await self.run_once(fleets)
            except Exception:  # e.g. the store briefly unreachable or a bad input: next round again
                log.exception("a charging re-plan failed; retrying in %.0f s", self._interval_s)
