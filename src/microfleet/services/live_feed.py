"""The live feed's fan-out: one poller per API process reads the event log and feeds every subscriber.

Each subscriber sees exactly the vehicles its principal may see (``AccountService``; its credential, an API
token or a browser's session, and the grants are checked again every ``visibility_refresh_s``), and of
``command`` events only those the commands API shows it (a driver: their own), from a bounded queue of
its own. The poller only appends to queues and never waits for a client, so a slow client cannot slow
ingest or the others: when its queue is full it is ended with :data:`CLOSE_TOO_SLOW` and resumes with its
token (docs/live.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass

from microfleet.domain.access import Principal, Role, UserPrincipal
from microfleet.errors import AuthenticationError, LiveFeedEndedError, MicrofleetError, PermissionDeniedError
from microfleet.services.accounts import AccountService
from microfleet.services.live import COMMAND, GAP, READY, LiveEventLog, StoredLiveEvent

log = logging.getLogger(__name__)

# WebSocket close codes (RFC 6455 section 7.4.1, IANA registry).
CLOSE_POLICY = 1008  # not authenticated, a device credential, a token revoked while connected
CLOSE_TRY_LATER = 1013  # too slow for the feed, or too many failed authentications: come back later
CLOSE_GOING_AWAY = 1001  # the server is stopping
CLOSE_TOO_SLOW = CLOSE_TRY_LATER


@dataclass(frozen=True, slots=True)
class LiveFeedLimits:
    """How the feed polls, how far a client may fall behind, how often access is checked again."""

    poll_interval_s: float = 0.15
    page_max_events: int = 1_000  # read from the log at a time
    queue_max_events: int = 10_000  # waiting for one subscriber
    frame_max_events: int = 1_000  # sent in one message
    frame_max_chars: int = 256 * 1024  # of one message (one event is always sent whole)
    window_ms: int = 600_000  # the resume window: events older than this are pruned
    visibility_refresh_s: float = 5.0
    prune_every_s: float = 10.0


def event_json(event_id: int, vehicle_id: str | None, kind: str, ts_ms: int, payload_json: str) -> str:
    """One event as the feed sends it: ``{"event_id", "vehicle_id", "kind", "ts_ms", "payload"}``."""
    return (
        f'{{"event_id":{event_id},"vehicle_id":{json.dumps(vehicle_id)},"kind":{json.dumps(kind)},'
        f'"ts_ms":{ts_ms},"payload":{payload_json}}}'
    )


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def _messages(items: list[str], max_chars: int) -> Iterator[str]:
    """``items`` as JSON-array messages of at most ``max_chars`` (at least one item each)."""
    start, size = 0, 0
    for i, item in enumerate(items):
        if i > start and size + len(item) > max_chars:
            yield "[" + ",".join(items[start:i]) + "]"
            start, size = i, 0
        size += len(item)
    if start < len(items):
        yield "[" + ",".join(items[start:]) + "]"


def _stored_json(e: StoredLiveEvent) -> str:
    return event_json(e.event_id, e.vehicle_id, e.kind, e.ts_ms, e.payload_json)


def command_issuer(e: StoredLiveEvent) -> int | None:
    """The user id that issued the command a ``command`` event announces (its payload's ``user_id``)."""
    try:
        issuer = json.loads(e.payload_json).get("user_id")
    except (ValueError, AttributeError):
        return None
    return issuer if isinstance(issuer, int) else None


Recheck = Callable[[], Principal]
"""Authenticates a subscriber's credential again: its principal now, or AuthenticationError once it ended."""


class Subscription:
    """One client's view of the feed: its visible vehicles, its queue, and how far it has been sent."""

    def __init__(
        self,
        user: UserPrincipal,
        recheck: Recheck,
        client: str,
        visible: frozenset[str] | None,
        queue_max: int,
    ) -> None:
        self.user = user
        self.recheck = recheck  # holds the token or session to check again while connected; never logged
        self.client = client
        self.visible = visible  # None: every vehicle (an admin)
        self.skip_through = 0  # ids up to this one were replayed or seen before: not queued again
        self.last_sent_id = 0
        self.ended: LiveFeedEndedError | None = None
        self.refresh_at = 0.0  # when (event-loop time) its token and grants are next checked
        self._queue: deque[tuple[int, str]] = deque()
        self._queue_max = queue_max
        self._wake = asyncio.Event()

    def sees(self, vehicle_id: str) -> bool:
        """Tell whether this subscriber may see the vehicle now."""
        return self.visible is None or vehicle_id in self.visible

    @property
    def own_commands_only(self) -> bool:
        """A driver receives only the ``command`` events of their own commands, as the commands API."""
        return self.user.role is Role.DRIVER

    def receives(self, e: StoredLiveEvent, issuer: int | None) -> bool:
        """Tell whether this subscriber gets the event (``issuer``: a command event's issuing user)."""
        if not self.sees(e.vehicle_id):
            return False
        return e.kind != COMMAND or not self.own_commands_only or issuer == self.user.user_id

    def offer(self, event_id: int, vehicle_id: str, item: str) -> None:
        """Queue an event for this subscriber if it sees the vehicle; end it if its queue is full."""
        if self.ended is not None or event_id <= self.skip_through or not self.sees(vehicle_id):
            return
        if len(self._queue) >= self._queue_max:
            self.end(CLOSE_TOO_SLOW, self._too_slow())
            return
        self._queue.append((event_id, item))
        self._wake.set()

    def offer_all(self, items: list[tuple[int, str]]) -> None:
        """Queue a poll's ``(event_id, item)`` list whole, for a subscriber who sees every vehicle."""
        if self.ended is not None or not items:
            return
        if items[0][0] <= self.skip_through:
            items = [i for i in items if i[0] > self.skip_through]
        if len(self._queue) + len(items) > self._queue_max:
            self.end(CLOSE_TOO_SLOW, self._too_slow())
            return
        self._queue.extend(items)
        self._wake.set()

    def _too_slow(self) -> str:
        return (
            f"too slow: more than {self._queue_max} events waited; reconnect with "
            "?after=<the last event_id you received>"
        )

    def skip(self, through_id: int) -> None:
        """Never send events up to ``through_id`` (the client has them), queued ones included."""
        self.skip_through = max(self.skip_through, through_id)
        while self._queue and self._queue[0][0] <= through_id:
            self._queue.popleft()

    def end(self, close_code: int, reason: str) -> None:
        """End the subscription; its sender stops at once, without sending what is still queued."""
        if self.ended is None:
            self.ended = LiveFeedEndedError(reason, close_code)
            self._queue.clear()
            self._wake.set()

    async def next_message(self, frame_max: int, frame_max_chars: int) -> str:
        """The next message: the events waiting (a JSON array, oldest first, within the frame's bounds).

        A message holds at least one event, and more only up to ``frame_max`` events and
        ``frame_max_chars`` characters, so a client's message size limit (websockets: 1 MiB) holds.
        """
        while not self._queue:
            if self.ended is not None:
                raise LiveFeedEndedError(self.ended.message, self.ended.close_code)
            self._wake.clear()
            await self._wake.wait()
        if self.ended is not None:
            raise LiveFeedEndedError(self.ended.message, self.ended.close_code)
        items = [self._queue.popleft()]
        size = len(items[0][1])
        while self._queue and len(items) < frame_max and size + len(self._queue[0][1]) <= frame_max_chars:
            items.append(self._queue.popleft())
            size += len(items[-1][1])
        self.last_sent_id = items[-1][0]
        return "[" + ",".join(item for _, item in items) + "]"

    async def wait_ended(self) -> LiveFeedEndedError:
        """Wait until the feed ends this subscription."""
        while self.ended is None:
            self._wake.clear()
            await self._wake.wait()
        return self.ended


class LiveFeed:
    """The process's live feed: subscribe, and a poller that reads the log and fans events out."""

    def __init__(
        self,
        log_: LiveEventLog,
        accounts: AccountService,
        clock: Callable[[], int],
        limits: LiveFeedLimits,
    ) -> None:
        self._log = log_
        self._accounts = accounts
        self._clock = clock
        self.limits = limits
        self._subscribers: set[Subscription] = set()
        # Who gets a vehicle's events: those who see every vehicle, and per vehicle the others; rebuilt
        # after a subscriber comes, goes or sees other vehicles (None: to rebuild).
        self._index: tuple[list[Subscription], dict[str, list[Subscription]]] | None = None
        self._cursor = 0
        self._poller: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- subscribing

    async def authenticate(self, token: str, client: str) -> UserPrincipal:
        """The user calling with ``token``; a device credential or an unknown token is refused."""
        return await self.authenticate_with(self.token_recheck(token, client))

    def token_recheck(self, token: str, client: str) -> Recheck:
        """How a subscriber authenticated with an API token is checked again."""
        return functools.partial(self._accounts.authenticate, token, client)

    @staticmethod
    async def authenticate_with(recheck: Recheck) -> UserPrincipal:
        """The user a credential names now; a device credential is refused."""
        caller = await asyncio.to_thread(recheck)
        if not isinstance(caller, UserPrincipal):
            raise PermissionDeniedError("a device credential only writes telemetry; use a user's API token")
        return caller

    async def subscribe(self, user: UserPrincipal, recheck: Recheck, client: str) -> Subscription:
        """Register a subscriber; it receives every visible event after the poller's current position.

        ``recheck`` authenticates its credential again every ``visibility_refresh_s``
        (:meth:`token_recheck`, or a browser session's check).
        """
        await self._ensure_polling()
        ids = await asyncio.to_thread(self._accounts.visible_vehicle_ids, user)
        sub = Subscription(
            user, recheck, client, None if ids is None else frozenset(ids), self.limits.queue_max_events
        )
        sub.refresh_at = asyncio.get_running_loop().time() + self.limits.visibility_refresh_s
        sub.skip_through = self._cursor  # read and register with no await between: nothing falls in between
        self._subscribers.add(sub)
        self._index = None
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Forget a subscriber (its connection closed)."""
        self._subscribers.discard(sub)
        self._index = None

    async def opening(self, sub: Subscription, after: int | None) -> AsyncIterator[str]:
        """The messages a subscriber gets first: the replay after its token (or a gap), then ``ready``.

        ``after`` is the last event id the client received; None for a fresh start. Events after
        ``after`` up to where the live queue starts are read from the log, in pages; a token older than
        the log (its events were pruned) or newer than any event gets one ``gap`` item instead.
        """
        start = sub.skip_through
        now_ms = self._clock()
        if after is not None:
            bounds = await asyncio.to_thread(self._log.bounds)
            oldest, newest = bounds if bounds is not None else (start + 1, start)
            if after < oldest - 1 or after > max(newest, start):
                payload = {
                    "after": after,
                    "oldest_event_id": oldest,
                    "reason": "the events after this token are no longer kept (or the token is not one "
                    "of this server's): fetch the vehicles' state again, then go on from event_id",
                }
                yield f"[{event_json(start, None, GAP, now_ms, _compact(payload))}]"
                after = None
        if after is not None and after > start:
            sub.skip(after)  # this process's poller is behind the client: skip what it has
        position = after if after is not None else start
        replayed = 0
        while after is not None and position < start:
            page = await asyncio.to_thread(self._log.after, position, self.limits.page_max_events)
            page = [e for e in page if e.event_id <= start]
            if not page:
                break
            position = page[-1].event_id
            items = [
                _stored_json(e)
                for e in page
                if sub.receives(e, command_issuer(e) if e.kind == COMMAND else None)
            ]
            replayed += len(items)
            for message in _messages(items, self.limits.frame_max_chars):
                yield message
            sub.last_sent_id = position
        resume_from = max(start, sub.skip_through)
        ready = {"replayed": replayed}
        yield f"[{event_json(resume_from, None, READY, self._clock(), _compact(ready))}]"

    # --- the poller

    async def _ensure_polling(self) -> None:
        loop = asyncio.get_running_loop()
        if self._poller is not None and self._loop is loop and not self._poller.done():
            return
        bounds = await asyncio.to_thread(self._log.bounds)
        if self._poller is None or self._poller.done() or self._loop is not loop:
            self._cursor = bounds[1] if bounds is not None else 0
            self._loop = loop
            self._poller = loop.create_task(self._poll_forever(), name="live-feed-poller")

    async def stop(self) -> None:
        """End every subscription (close 1001) and stop the poller."""
        for sub in list(self._subscribers):
            sub.end(CLOSE_GOING_AWAY, "the server is stopping; reconnect with ?after=<the last event_id>")
        self._subscribers.clear()
        self._index = None
        poller, self._poller = self._poller, None
        if poller is not None and poller.get_loop() is asyncio.get_running_loop():
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller

    async def _poll_forever(self) -> None:
        # Checking grants and pruning wait on the store (a prune waits for SQLite's writer); they run
        # beside the polling, so neither ever holds an event back.
        maintenance = asyncio.create_task(self._maintain_forever(), name="live-feed-maintenance")
        try:
            while True:
                read = await self._guarded(self._poll_once)
                if read < self.limits.page_max_events:
                    await asyncio.sleep(self.limits.poll_interval_s)
        finally:
            maintenance.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await maintenance

    async def _maintain_forever(self) -> None:
        loop = asyncio.get_running_loop()
        next_prune = loop.time()
        while True:
            await asyncio.sleep(min(1.0, self.limits.visibility_refresh_s))
            now = loop.time()
            await self._guarded(functools.partial(self._refresh_due, now))
            if now >= next_prune:
                next_prune = now + self.limits.prune_every_s
                await self._guarded(self._prune)

    async def _prune(self) -> int:
        return await asyncio.to_thread(self._log.prune, self._clock() - self.limits.window_ms)

    async def _guarded(self, step: Callable[[], Awaitable[int | None]]) -> int:
        """Run one step of the poller; an error is logged and waited out, never the poller's end."""
        try:
            return await step() or 0
        except MicrofleetError as exc:  # the store is away: keep the subscribers, try again
            log.warning("live feed: %s", exc.message)
        except Exception:  # a bug must not silence every subscriber for good: log it, go on
            log.exception("live feed poller failed; retrying in 1 s")
        await asyncio.sleep(1.0)
        return 0

    async def _poll_once(self) -> int:
        if not self._subscribers:  # nobody listens: only keep the position
            bounds = await asyncio.to_thread(self._log.bounds)
            if not self._subscribers:  # one that came meanwhile gets the events after the old position
                self._cursor = max(self._cursor, bounds[1] if bounds is not None else 0)
            return 0
        events = await asyncio.to_thread(self._log.after, self._cursor, self.limits.page_max_events)
        if not events:
            return 0
        everyone, by_vehicle = self._index if self._index is not None else self._build_index()
        shared: list[tuple[int, str]] = []  # every event, once, for those who see every vehicle
        for e in events:
            targets = by_vehicle.get(e.vehicle_id)
            if targets is None and not everyone:
                continue
            item = _stored_json(e)
            if everyone:  # admins: every command event too
                shared.append((e.event_id, item))
            if targets and e.kind == COMMAND:  # a driver gets only their own commands' events
                issuer = command_issuer(e)
                targets = [s for s in targets if not s.own_commands_only or issuer == s.user.user_id]
            for sub in targets or ():
                sub.offer(e.event_id, e.vehicle_id, item)
        for sub in everyone:
            sub.offer_all(shared)
        self._cursor = events[-1].event_id
        ended = [sub for sub in self._subscribers if sub.ended is not None]
        if ended:
            self._subscribers.difference_update(ended)
            self._index = None
        return len(events)

    def _build_index(self) -> tuple[list[Subscription], dict[str, list[Subscription]]]:
        everyone: list[Subscription] = []
        by_vehicle: dict[str, list[Subscription]] = {}
        for sub in self._subscribers:
            if sub.visible is None:
                everyone.append(sub)
            else:
                for vehicle_id in sub.visible:
                    by_vehicle.setdefault(vehicle_id, []).append(sub)
        self._index = (everyone, by_vehicle)
        return self._index

    async def _refresh_due(self, now: float) -> None:
        """Check again, in one worker-thread call, the token and grants of subscribers that are due."""
        due = [s for s in self._subscribers if now >= s.refresh_at]
        for sub in due:
            sub.refresh_at = now + self.limits.visibility_refresh_s
        if due:
            results = await asyncio.to_thread(self._check_again, due)
            for sub, outcome in zip(due, results, strict=True):
                if isinstance(outcome, LiveFeedEndedError):
                    sub.end(outcome.close_code, outcome.message)
                    self._subscribers.discard(sub)
                    self._index = None
                elif outcome != sub.visible:
                    sub.visible = outcome
                    self._index = None

    def _check_again(self, subs: list[Subscription]) -> list[frozenset[str] | LiveFeedEndedError | None]:
        results: list[frozenset[str] | LiveFeedEndedError | None] = []
        for sub in subs:
            try:
                caller = sub.recheck()
            except AuthenticationError as exc:  # a token revoked; a session expired, logged out, ended
                reason = f"the token is no longer valid: {exc.message}"
                results.append(LiveFeedEndedError(reason, CLOSE_POLICY))
                continue
            except MicrofleetError:  # throttled or the store away: keep what it had
                results.append(sub.visible)
                continue
            if not isinstance(caller, UserPrincipal):
                results.append(LiveFeedEndedError("the token is no longer a user's", CLOSE_POLICY))
                continue
            ids = self._accounts.visible_vehicle_ids(caller)
            results.append(None if ids is None else frozenset(ids))
        return results
