"""The quarantine as a use case: who may read which refused records, and replay after a fix."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Protocol

from microfleet.domain.access import UserPrincipal, can_read_quarantine, can_replay_quarantine
from microfleet.errors import NotFoundError, PermissionDeniedError
from microfleet.services.accounts import AccountService
from microfleet.services.ingest import IngestService


@dataclass(frozen=True, slots=True)
class QuarantineEntry:
    """One refused record as kept in quarantine: verbatim, with why and where it came from."""

    quarantine_id: int
    received_at_ms: int
    source: str
    credential_vehicle_id: str | None
    vehicle_id: str | None
    ts_ms: int | None
    reason: str
    detail: str
    raw_text: str
    replayed_at_ms: int | None
    replay_status: str | None


@dataclass(frozen=True, slots=True)
class QuarantinePage:
    """Entries in arrival order, bounded in rows and in bytes of text; more follow after ``next_after_id``."""

    items: list[QuarantineEntry]
    next_after_id: int | None


@dataclass(frozen=True, slots=True)
class ReplayOutcome:
    """What became of a replayed quarantined record: accepted, duplicate or rejected again."""

    quarantine_id: int
    status: str
    reason: str | None
    detail: str | None


class QuarantinePort(Protocol):
    """The quarantine table (``microfleet.store.quarantine_store.QuarantineStore``)."""

    def list(
        self,
        *,
        vehicle_ids: Collection[str] | None,
        reason: str | None = None,
        after_id: int = 0,
        limit: int = 100,
        include_replayed: bool = True,
    ) -> list[QuarantineEntry]:
        """Entries in arrival order, of these vehicles (None: every vehicle)."""
        ...

    def page(
        self,
        *,
        vehicle_ids: Collection[str] | None,
        reason: str | None = None,
        after_id: int = 0,
        limit: int = 100,
        include_replayed: bool = True,
    ) -> QuarantinePage:
        """Entries as :meth:`list` gives them, a page bounded in rows and in bytes of text."""
        ...

    def get(self, quarantine_id: int) -> QuarantineEntry | None:
        """One entry by id."""
        ...

    def mark_replayed(self, quarantine_id: int, status: str, at_ms: int) -> None:
        """Record that an entry was replayed and what became of it."""
        ...


class QuarantineService:
    """List refused records to those allowed to see them; replay them through today's validator."""

    def __init__(
        self,
        store: QuarantinePort,
        accounts: AccountService,
        ingest: IngestService,
        clock: Callable[[], int],
    ) -> None:
        self._store = store
        self._accounts = accounts
        self._ingest = ingest
        self._clock = clock

    def page_for(
        self,
        user: UserPrincipal,
        *,
        reason: str | None = None,
        after_id: int = 0,
        limit: int = 100,
        include_replayed: bool = True,
    ) -> QuarantinePage:
        """A page of refused records of the vehicles the user sees (every one for an admin)."""
        if not can_read_quarantine(user):
            raise PermissionDeniedError(f"a {user.role.value} may not read the quarantine")
        return self._store.page(
            vehicle_ids=self._accounts.visible_vehicle_ids(user),
            reason=reason,
            after_id=after_id,
            limit=limit,
            include_replayed=include_replayed,
        )

    def list(
        self,
        *,
        vehicle_ids: Collection[str] | None = None,
        reason: str | None = None,
        after_id: int = 0,
        limit: int = 100,
        include_replayed: bool = True,
    ) -> list[QuarantineEntry]:
        """Refused records of these vehicles (None: all), as the operator of the installation reads them."""
        return self._store.list(
            vehicle_ids=vehicle_ids,
            reason=reason,
            after_id=after_id,
            limit=limit,
            include_replayed=include_replayed,
        )

    def get(self, quarantine_id: int) -> QuarantineEntry:
        """One refused record by id; :class:`NotFoundError` if there is none."""
        entry = self._store.get(quarantine_id)
        if entry is None:
            raise NotFoundError(f"quarantined record {quarantine_id} does not exist")
        return entry

    def replay_as(self, user: UserPrincipal, quarantine_id: int) -> ReplayOutcome:
        """Replay one record on a user's request: admins only, as it rewrites history."""
        if not can_replay_quarantine(user):
            raise PermissionDeniedError("only an admin may replay quarantined records")
        return self.replay(quarantine_id)

    def replay(self, quarantine_id: int) -> ReplayOutcome:
        """Replay one quarantined record under the credential it arrived with, and mark the outcome."""
        entry = self.get(quarantine_id)
        if entry.credential_vehicle_id is None:
            return ReplayOutcome(
                quarantine_id, "rejected", "unknown_vehicle", "it arrived without a device credential"
            )
        now_ms = self._clock()
        report = self._ingest.replay(
            entry.raw_text,
            credential_vehicle_id=entry.credential_vehicle_id,
            source=f"replay of quarantine {quarantine_id}",
            now_ms=now_ms,
        )
        if not report.results:
            outcome = ReplayOutcome(
                quarantine_id, "rejected", "malformed_json", "the quarantined text holds no record"
            )
        else:
            first = report.results[0]
            outcome = ReplayOutcome(quarantine_id, first.status, first.reason, first.detail)
        self._store.mark_replayed(quarantine_id, outcome.status, now_ms)
        return outcome
