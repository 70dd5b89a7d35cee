"""Which ingest worker holds which partition: leases in a JetStream key-value bucket.

Each partition has a key (``p<k>``) whose value is the worker holding it. A worker takes a free partition
with a create (it fails if the key exists), renews its own with an update that names the revision it last
wrote (it fails if anyone else wrote since), and gives one back with a delete of that revision. The
bucket's keys expire ``lease_s`` after their last write, so a dead worker's partitions are free again
within ``lease_s``. Each worker also writes a presence key (``w-<id>``), so every worker knows how many are
alive and holds at most its fair share (the partitions divided by the live workers, rounded up): a new
worker gets partitions from the others within a few renewals.

A lease counts as held only until ``lease_s`` after the renewal was *sent* minus a safety margin: the
bucket's clock starts later (when the server stores the write), so the worker stops using a partition
before anyone else can take it. :class:`OwnedStale` is what a lease lets a worker derive: the stale cars of
its partitions.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import zlib
from collections.abc import Callable, Collection
from typing import Protocol

from nats.js import JetStreamContext
from nats.js.errors import BucketNotFoundError, KeyWrongLastSequenceError, NoKeysError
from nats.js.kv import KeyValue

log = logging.getLogger(__name__)


async def lease_bucket(js: JetStreamContext, bucket: str, lease_s: float, replicas: int = 1) -> KeyValue:
    """The bucket of leases, created with a key lifetime of ``lease_s`` if it does not exist yet."""
    try:
        return await js.key_value(bucket)
    except BucketNotFoundError:
        return await js.create_key_value(bucket=bucket, ttl=lease_s, history=1, replicas=replicas)


class PartitionLeases:
    """One worker's leases on partitions (see the module's docstring)."""

    def __init__(
        self,
        kv: KeyValue,
        partitions: int,
        lease_s: float,
        worker_id: str,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._kv = kv
        self._partitions = partitions
        self._lease_s = lease_s
        self._margin_s = lease_s / 3
        self.worker_id = worker_id
        self._monotonic = monotonic
        self._held: dict[int, tuple[int, float]] = {}  # partition -> (revision written, sent at)
        self._lock = (
            asyncio.Lock()
        )  # renewals, takes and releases one at a time (a release runs as its own task)
        self.taken = 0
        self.lost = 0
        self.released = 0

    def valid(self) -> frozenset[int]:
        """The partitions this worker may use now (held, with more than the margin left)."""
        now = self._monotonic()
        return frozenset(
            p for p, (_, sent) in self._held.items() if sent + self._lease_s - now > self._margin_s
        )

    async def renew(self) -> None:
        """Renew every lease held; one someone else wrote meanwhile, or one run out, is dropped."""
        async with self._lock:
            await self._renew()

    async def _renew(self) -> None:
        for partition, (revision, sent) in list(self._held.items()):
            sending = self._monotonic()
            try:
                new_revision = await self._kv.update(self._key(partition), self._value, last=revision)
            except KeyWrongLastSequenceError:
                self._drop(partition, "taken by another worker")
                continue
            except Exception as exc:  # NATS unreachable: keep it until it runs out
                if sent + self._lease_s - self._monotonic() <= self._margin_s:
                    self._drop(partition, f"not renewed in time ({exc})")
                continue
            self._held[partition] = (new_revision, sending)

    async def balance(self) -> list[int]:
        """Say this worker is alive, take free partitions up to its fair share; the ones held over it."""
        async with self._lock:
            return await self._balance()

    async def _balance(self) -> list[int]:
        await self._kv.put(f"w-{self.worker_id}", b"1")
        try:
            live = sum(1 for key in await self._kv.keys() if key.startswith("w-"))
        except NoKeysError:
            live = 1
        fair = math.ceil(self._partitions / max(live, 1))
        start = zlib.crc32(self.worker_id.encode()) % self._partitions
        for step in range(self._partitions):
            if len(self._held) >= fair:
                break
            partition = (start + step) % self._partitions
            if partition in self._held:
                continue
            sending = self._monotonic()
            try:
                revision = await self._kv.create(self._key(partition), self._value)
            except KeyWrongLastSequenceError:
                continue  # another worker holds it
            self._held[partition] = (revision, sending)
            self.taken += 1
            log.info("worker %s took partition %d", self.worker_id, partition)
        return sorted(self._held)[fair:]

    async def release(self, partitions: list[int]) -> None:
        """Give partitions back at once (a clean stop, or more than the fair share)."""
        async with self._lock:
            await self._release(partitions)

    async def _release(self, partitions: list[int]) -> None:
        for partition in partitions:
            held = self._held.pop(partition, None)
            if held is None:
                continue
            try:
                await self._kv.delete(self._key(partition), last=held[0])
                self.released += 1
                log.info("worker %s released partition %d", self.worker_id, partition)
            except Exception as exc:  # it runs out by itself
                log.warning(
                    "releasing partition %d failed (%s); it frees itself within the lease", partition, exc
                )

    async def leave(self) -> None:
        """Release every lease and the presence key (a clean stop)."""
        await self.release(list(self._held))
        try:
            await self._kv.delete(f"w-{self.worker_id}")
        except Exception as exc:
            log.debug("presence key not deleted (%s); it runs out by itself", exc)

    @property
    def _value(self) -> bytes:
        return self.worker_id.encode()

    @staticmethod
    def _key(partition: int) -> str:
        return f"p{partition}"

    def _drop(self, partition: int, why: str) -> None:
        self._held.pop(partition, None)
        self.lost += 1
        log.warning("worker %s lost partition %d: %s", self.worker_id, partition, why)


class StaleByVehicle(Protocol):
    """The store's stale list as a worker claims it: only the cars it may derive."""

    def claim_stale_of(
        self, wanted: Callable[[str], bool], limit: int, skip: Collection[str] = ()
    ) -> dict[str, int]:
        """Take up to ``limit`` stale cars ``wanted`` accepts (none of ``skip``), with their start."""
        ...

    def mark_stale(self, vehicle_id: str, from_ms: int) -> None:
        """Put a car back on the list."""
        ...

    def stale_count(self) -> int:
        """How many cars are on the list (every worker's)."""
        ...


class OwnedStale:
    """The stale list narrowed to one worker's partitions: what its :class:`DerivationQueue` claims from."""

    def __init__(self, store: StaleByVehicle, owns: Callable[[str], bool]) -> None:
        self._store = store
        self._owns = owns

    def claim_stale(self, limit: int, skip: Collection[str] = ()) -> dict[str, int]:
        """Take up to ``limit`` of this worker's stale cars."""
        return self._store.claim_stale_of(self._owns, limit, skip)

    def mark_stale(self, vehicle_id: str, from_ms: int) -> None:
        """Put a car back on the list."""
        self._store.mark_stale(vehicle_id, from_ms)

    def stale_count(self) -> int:
        """How many cars wait, every worker's."""
        return self._store.stale_count()
