"""Who hears of an alert and when: subscriptions, quiet hours and the retry back-off of a delivery.

A subscription is one user's channel (an Apprise URL) with the severities and kinds they want and, if
they like, quiet hours in their own time zone. During quiet hours a delivery waits until they end, and is
skipped if its alert resolved meanwhile (nobody is told at 07:00 about a door locked at 03:10); a critical
alert goes through at once unless the subscription says otherwise. Pure: times are arguments.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Final
from zoneinfo import ZoneInfo

from microfleet.domain.alerts import AlertKind, Severity
from microfleet.domain.time_zones import iana_zone
from microfleet.errors import InvalidInputError

_HHMM: Final = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
MAX_CHANNEL_URL_CHARS: Final = 2_000
# Retries of a failing channel: 30 s doubling to 1 h, 10 attempts (~3 h in all) before it is given up.
# Microfleet's choice: outlasts a router reboot or a mail server's maintenance, not a dead address.
RETRY_FIRST_S: Final = 30.0
RETRY_MAX_S: Final = 3_600.0
MAX_ATTEMPTS: Final = 10


class DeliveryStatus(enum.StrEnum):
    """Where one delivery (alert x subscription x channel) is: waiting, done, or given up."""

    PENDING = "pending"  # to be sent at next_attempt_ms (first try, a retry, or after quiet hours)
    SENT = "sent"
    FAILED = "failed"  # every attempt failed; last_error says why
    SKIPPED = "skipped"  # held by quiet hours, and the alert resolved before they ended


class Channel(enum.StrEnum):
    """How an alert leaves Microfleet."""

    APPRISE = "apprise"  # a user's subscription: ntfy, e-mail, Telegram, webhooks ... (Apprise URL)
    MQTT = "mqtt"  # <prefix>/v1/<vehicle_id>/alerts on the installation's broker
    LIVE = "live"  # the live feed (GET /api/v1/live)


@dataclass(frozen=True, slots=True)
class QuietHours:
    """Local times ``[start, end)`` in a time zone; ``end`` before ``start`` wraps past midnight."""

    start: str
    end: str
    timezone: str

    def __post_init__(self) -> None:
        for name, value in (("start", self.start), ("end", self.end)):
            if not _HHMM.match(value):
                raise InvalidInputError(f"quiet hours {name} {value!r} is not HH:MM (00:00-23:59)")
        if self.start == self.end:
            raise InvalidInputError("quiet hours start and end are the same time")
        check_timezone(self.timezone)

    def _minutes(self, text: str) -> int:
        hours, minutes = text.split(":")
        return int(hours) * 60 + int(minutes)

    def holds(self, ts_ms: int) -> bool:
        """Whether ``ts_ms`` falls in the quiet hours (in their time zone)."""
        local = dt.datetime.fromtimestamp(ts_ms / 1000, tz=ZoneInfo(self.timezone))
        now, start, end = local.hour * 60 + local.minute, self._minutes(self.start), self._minutes(self.end)
        return start <= now < end if start < end else now >= start or now < end

    def ends_after(self, ts_ms: int) -> int:
        """The first instant at or after ``ts_ms`` outside the quiet hours (UTC epoch ms)."""
        if not self.holds(ts_ms):
            return ts_ms
        zone = ZoneInfo(self.timezone)
        local = dt.datetime.fromtimestamp(ts_ms / 1000, tz=zone)
        hours, minutes = (int(x) for x in self.end.split(":"))
        end = local.replace(hour=hours, minute=minutes, second=0, microsecond=0)
        if end <= local:
            end += dt.timedelta(days=1)
        # Wall-clock arithmetic across a DST change: re-anchor the local time in its zone.
        end = dt.datetime(end.year, end.month, end.day, end.hour, end.minute, tzinfo=zone)
        return int(end.timestamp() * 1000)


def check_timezone(name: str) -> None:
    """Refuse a time zone that is not an IANA name."""
    iana_zone(name)


@dataclass(frozen=True, slots=True)
class Subscription:
    """A user's channel and what they want on it."""

    subscription_id: int
    user_id: int
    channel_url: str
    min_severity: Severity = Severity.INFO
    kinds: frozenset[AlertKind] = frozenset()  # empty: every kind
    quiet: QuietHours | None = None
    critical_bypasses_quiet: bool = True
    label: str = ""
    created_at_ms: int = 0

    def wants(self, kind: AlertKind, severity: Severity) -> bool:
        """Whether an alert of this kind and severity goes to this subscription."""
        return severity.rank >= self.min_severity.rank and (not self.kinds or kind in self.kinds)

    def send_at(self, severity: Severity, now_ms: int) -> int:
        """When a delivery raised ``now_ms`` is due: now, or when the quiet hours end."""
        if self.quiet is None or (severity is Severity.CRITICAL and self.critical_bypasses_quiet):
            return now_ms
        return self.quiet.ends_after(now_ms)


def parse_kinds(names: Collection[str]) -> frozenset[AlertKind]:
    """Alert kinds by name (a clear error naming the known ones otherwise)."""
    try:
        return frozenset(AlertKind(n) for n in names)
    except ValueError:
        known = ", ".join(k.value for k in AlertKind)
        raise InvalidInputError(f"unknown alert kind in {sorted(names)}; known kinds: {known}") from None


def retry_at(now_ms: int, attempts: int) -> int | None:
    """When to try a delivery again after its ``attempts``-th failure (None: give it up)."""
    if attempts >= MAX_ATTEMPTS:
        return None
    wait_s = min(RETRY_MAX_S, RETRY_FIRST_S * float(2 ** max(0, attempts - 1)))
    return now_ms + int(wait_s * 1000)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One delivery of an alert on one channel (to one subscription for Apprise) and how it went."""

    delivery_id: int
    alert_id: int
    vehicle_id: str
    channel: Channel
    subscription_id: int | None
    user_id: int | None
    status: DeliveryStatus
    attempts: int
    last_error: str | None
    next_attempt_ms: int
    created_at_ms: int
    sent_at_ms: int | None = None


@dataclass(frozen=True, slots=True)
class PlannedDelivery:
    """A delivery to store with a new alert: its channel, subscription and when it is due."""

    channel: Channel
    subscription_id: int | None
    due_ms: int
