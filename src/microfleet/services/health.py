"""Readiness: can this process serve? Its store must answer and be migrated."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from microfleet.errors import StoreUnavailableError


class StoreStatus(Protocol):
    """The store's schema revision (``microfleet.store.migrate.StoreProbe``)."""

    def schema_revision(self) -> str | None:
        """The revision (None: never migrated); raises :class:`StoreUnavailableError` if unreachable."""
        ...


@dataclass(frozen=True, slots=True)
class Readiness:
    """Ready with the schema revision, or not ready with a reason fit for anyone to read."""

    ready: bool
    reason: str | None = None
    schema_revision: str | None = None


def check_readiness(store: StoreStatus) -> Readiness:
    """Ask the store; the reason names what to do and never carries the database's own error text."""
    try:
        revision = store.schema_revision()
    except StoreUnavailableError:
        return Readiness(False, "store unreachable")
    if revision is None:
        return Readiness(False, "store not migrated: run `microfleet db upgrade`")
    return Readiness(True, schema_revision=revision)
