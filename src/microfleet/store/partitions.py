"""PostgreSQL's telemetry partitions: one per UTC month, created ahead; dropping old months is retention.

Migration 0011 makes ``telemetry`` a table ``PARTITION BY RANGE (ts_ms)``: a partition
``telemetry_yYYYYmMM`` per UTC month ``[first ms of the month, first ms of the next)``, and the DEFAULT
partition ``telemetry_default`` for a record of a month that has none, so no record is ever refused for
its month. Creating a month whose rows already sit in DEFAULT moves them into the new partition in the
same transaction. SQLite keeps one plain table: every function here refuses a SQLite store.
docs/postgres.md tells the whole story (what is created when, what retention keeps).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, bindparam, text, update

from microfleet.errors import ConfigurationError, InvalidInputError
from microfleet.store.schema import vehicle_latest

MONTHS_AHEAD = 3  # months after the current one kept created, so live records never land in DEFAULT
LOCK_TIMEOUT_S = 10.0  # the longest creating or dropping a month waits for telemetry's locks
KEEPER_INTERVAL_S = 6 * 3600.0  # how often a running server creates the months ahead (docs/postgres.md)
DEFAULT_PARTITION = "telemetry_default"

_log = logging.getLogger(__name__)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MONTH_TEXT = re.compile(r"^(\d{4})-(\d{2})$")
_BOUNDS = re.compile(r"FROM \('?(-?\d+)'?\) TO \('?(-?\d+)'?\)")
# The UTC months a table's rows fall in (whole seconds decide: month boundaries fall on whole seconds).
_MONTHS_HELD = (
    "SELECT DISTINCT extract(year FROM t)::int, extract(month FROM t)::int"
    " FROM (SELECT to_timestamp(ts_ms / 1000) AT TIME ZONE 'UTC' AS t FROM {table}) AS s"
)
_LOCK_KEY = 0x6D66_7061_7274  # "mfpart": one session at a time creates or drops telemetry partitions


@dataclass(frozen=True, order=True, slots=True)
class Month:
    """A UTC calendar month: the span of one telemetry partition."""

    year: int
    month: int

    @classmethod
    def of_ms(cls, ts_ms: int) -> Month:
        """The UTC month ``ts_ms`` (epoch milliseconds) falls in."""
        when = _EPOCH + dt.timedelta(milliseconds=ts_ms)
        return cls(when.year, when.month)

    @classmethod
    def parse(cls, text_: str) -> Month:
        """A month written ``YYYY-MM``; anything else is :class:`InvalidInputError`."""
        found = _MONTH_TEXT.match(text_.strip())
        if found is None or not 1 <= int(found.group(2)) <= 12:
            raise InvalidInputError(f"{text_!r} is not a month; write it YYYY-MM, e.g. 2026-01")
        return cls(int(found.group(1)), int(found.group(2)))

    def plus(self, months: int) -> Month:
        """The month ``months`` later (earlier if negative)."""
        index = self.year * 12 + self.month - 1 + months
        return Month(index // 12, index % 12 + 1)

    @property
    def start_ms(self) -> int:
        """Its first millisecond, UTC epoch ms."""
        start = dt.datetime(self.year, self.month, 1, tzinfo=dt.UTC)
        return (start - _EPOCH) // dt.timedelta(milliseconds=1)

    @property
    def end_ms(self) -> int:
        """The first millisecond of the next month (the partition's exclusive upper bound)."""
        return self.plus(1).start_ms

    @property
    def table_name(self) -> str:
        """Its partition's name, ``telemetry_yYYYYmMM``."""
        return f"telemetry_y{self.year:04d}m{self.month:02d}"

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


@dataclass(frozen=True, slots=True)
class TelemetryPartition:
    """One partition of ``telemetry``: its month (None for DEFAULT or a span that is not one month)."""

    name: str
    month: Month | None
    from_ms: int | None
    to_ms: int | None
    rows_estimate: int  # PostgreSQL's live-row statistic: approximate, may lag a second behind writes
    size_bytes: int  # table and its indexes


@dataclass(frozen=True, slots=True)
class DroppedTelemetry:
    """What :meth:`TelemetryPartitions.drop_before` removed."""

    months: tuple[Month, ...]
    rows: int  # exact: counted before dropping, DEFAULT's old rows included


def wall_clock_ms() -> int:
    """Now, UTC epoch ms (partitions follow the calendar, not a test's frozen clock)."""
    return time.time_ns() // 1_000_000


def is_partitioned(conn: Connection) -> bool:
    """Whether the connection's ``telemetry`` is a partitioned table (PostgreSQL after migration 0011)."""
    if conn.dialect.name != "postgresql":
        return False
    kind = conn.execute(text("SELECT relkind FROM pg_class WHERE oid = to_regclass('telemetry')")).scalar()
    return kind == "p"


def is_partition_name(name: str) -> bool:
    """Whether a table name is one of Microfleet's telemetry partitions (not a declared table)."""
    return name == DEFAULT_PARTITION or re.fullmatch(r"telemetry_y\d{4,}m\d{2}", name) is not None


def list_partitions(conn: Connection) -> list[TelemetryPartition]:
    """The partitions of ``telemetry``, oldest month first, DEFAULT last."""
    rows = conn.execute(
        text(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid),"
            " coalesce(s.n_live_tup, greatest(c.reltuples, 0))::bigint, pg_total_relation_size(c.oid)"
            " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid"
            " WHERE i.inhparent = 'telemetry'::regclass"
        )
    ).all()
    found = []
    for name, bound, rows_estimate, size_bytes in rows:
        span = _BOUNDS.search(bound or "")
        from_ms, to_ms = (int(span.group(1)), int(span.group(2))) if span else (None, None)
        month = Month.of_ms(from_ms) if from_ms is not None else None
        if month is not None and (month.start_ms, month.end_ms) != (from_ms, to_ms):
            month = None
        found.append(TelemetryPartition(name, month, from_ms, to_ms, int(rows_estimate), int(size_bytes)))
    return sorted(found, key=lambda p: (p.from_ms is None, p.from_ms or 0, p.name))


def months_held(conn: Connection, table: str) -> list[Month]:
    """The UTC months the rows of ``table`` fall in, oldest first."""
    return sorted(Month(y, m) for y, m in conn.execute(text(_MONTHS_HELD.format(table=table))))


def create_month(conn: Connection, month: Month) -> bool:
    """Create ``month``'s partition unless one covers it; rows DEFAULT holds for it move in. True: created.

    The caller holds the lock that keeps other writers out (:meth:`TelemetryPartitions.ensure_ahead`) or
    owns the table outright (the migration).
    """
    covered = any(
        p.from_ms is not None
        and p.to_ms is not None
        and p.from_ms < month.end_ms
        and month.start_ms < p.to_ms
        for p in list_partitions(conn)
    )
    if covered:
        return False
    name, lo, hi = month.table_name, month.start_ms, month.end_ms
    in_default = f"FROM {DEFAULT_PARTITION} WHERE ts_ms >= {lo} AND ts_ms < {hi}"
    has_default = conn.execute(text(f"SELECT to_regclass('{DEFAULT_PARTITION}') IS NOT NULL")).scalar()
    if has_default and conn.execute(text(f"SELECT EXISTS (SELECT 1 {in_default})")).scalar():
        # PostgreSQL refuses a partition whose rows DEFAULT holds: build it beside, move them, attach it.
        conn.execute(text(f"CREATE TABLE {name} (LIKE telemetry INCLUDING DEFAULTS)"))
        conn.execute(text(f"ALTER TABLE {name} ADD CONSTRAINT {name}_pkey PRIMARY KEY (vehicle_id, ts_ms)"))
        conn.execute(text(f"INSERT INTO {name} SELECT * {in_default}"))
        conn.execute(text(f"DELETE {in_default}"))
        conn.execute(text(f"ALTER TABLE telemetry ATTACH PARTITION {name} FOR VALUES FROM ({lo}) TO ({hi})"))
    else:
        conn.execute(text(f"CREATE TABLE {name} PARTITION OF telemetry FOR VALUES FROM ({lo}) TO ({hi})"))
    return True


class TelemetryPartitions:
    """Listing, creating ahead and dropping the monthly partitions of a PostgreSQL store's telemetry."""

    def __init__(
        self, engine: Engine, clock: Callable[[], int] = wall_clock_ms, lock_timeout_s: float = LOCK_TIMEOUT_S
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._lock_timeout_ms = round(lock_timeout_s * 1000)

    @property
    def dialect(self) -> str:
        """The store's SQL dialect: ``postgresql`` or ``sqlite``."""
        return self._engine.dialect.name

    def supported(self) -> bool:
        """Whether this store's telemetry is partitioned (PostgreSQL, migrated past 0011)."""
        if self._engine.dialect.name != "postgresql":
            return False
        with self._engine.connect() as conn:
            return is_partitioned(conn)

    def _require(self, conn: Connection) -> None:
        if conn.dialect.name != "postgresql":
            raise ConfigurationError(
                "telemetry partitions are a PostgreSQL feature; this store is SQLite, where telemetry "
                "stays one table (docs/postgres.md)"
            )
        if not is_partitioned(conn):
            raise ConfigurationError(
                "this PostgreSQL store's telemetry is not partitioned yet; run microfleet db upgrade"
            )

    def current_month(self) -> Month:
        """The month it is now, UTC."""
        return Month.of_ms(self._clock())

    def partitions(self) -> list[TelemetryPartition]:
        """The partitions, oldest month first, DEFAULT last."""
        with self._engine.connect() as conn:
            self._require(conn)
            return list_partitions(conn)

    def ensure_ahead(self, months: int = MONTHS_AHEAD) -> list[Month]:
        """Create the current month's partition and the next ``months`` ones where missing; the created."""
        if months < 0:
            raise InvalidInputError(f"months ahead must be 0 or more, not {months}")
        wanted = [self.current_month().plus(i) for i in range(months + 1)]
        with self._engine.begin() as conn:
            self._require(conn)
            existing = {p.month for p in list_partitions(conn)}
            if all(m in existing for m in wanted):
                return []  # the usual case: nothing to lock, nothing written
            return self._create(conn, wanted)

    def split_default(self) -> list[Month]:
        """Give every month whose records wait in DEFAULT a partition of its own, moving them; the created."""
        with self._engine.begin() as conn:
            self._require(conn)
            return self._create(conn, months_held(conn, DEFAULT_PARTITION))

    def _create(self, conn: Connection, months: list[Month]) -> list[Month]:
        self._lock(conn)
        # Writers out until commit: a record cannot land in DEFAULT for a month being created.
        conn.execute(text("LOCK TABLE telemetry IN SHARE ROW EXCLUSIVE MODE"))
        return [m for m in months if create_month(conn, m)]

    def _check_cutoff(self, month: Month) -> None:
        current = self.current_month()
        if month > current:
            raise InvalidInputError(
                f"dropping before {month} would drop {current}, the current month (or a later one); "
                f"retention drops whole months before the current one: --before {current} at the latest"
            )

    def to_drop_before(self, month: Month) -> list[TelemetryPartition]:
        """The partitions :meth:`drop_before` would drop (DEFAULT's older rows go too); drops nothing."""
        self._check_cutoff(month)
        return [p for p in self.partitions() if p.to_ms is not None and p.to_ms <= month.start_ms]

    def drop_before(self, month: Month) -> DroppedTelemetry:
        """Drop every month before ``month`` (and DEFAULT's rows before it); never the current month.

        Derived history (drives, charges, states) is not touched; ``vehicle_latest``'s record counts lose
        the dropped rows, so they keep counting what is stored.
        """
        self._check_cutoff(month)
        cutoff = month.start_ms
        with self._engine.begin() as conn:
            self._require(conn)
            self._lock(conn)
            # Writers out until commit: no record lands in a month while it is counted.
            conn.execute(text("LOCK TABLE telemetry IN SHARE ROW EXCLUSIVE MODE"))
            counts: dict[str, int] = {}
            dropped = []
            for p in list_partitions(conn):
                if p.to_ms is None or p.to_ms > cutoff:
                    continue
                self._count(conn, f"SELECT vehicle_id, count(*) FROM {p.name} GROUP BY vehicle_id", counts)
                conn.execute(text(f"ALTER TABLE telemetry DETACH PARTITION {p.name}"))
                conn.execute(text(f"DROP TABLE {p.name}"))
                if p.month is not None:
                    dropped.append(p.month)
            if conn.execute(text(f"SELECT to_regclass('{DEFAULT_PARTITION}') IS NOT NULL")).scalar():
                self._count(
                    conn,
                    f"WITH gone AS (DELETE FROM {DEFAULT_PARTITION} WHERE ts_ms < {cutoff}"
                    " RETURNING vehicle_id) SELECT vehicle_id, count(*) FROM gone GROUP BY vehicle_id",
                    counts,
                )
            if counts:
                conn.execute(
                    update(vehicle_latest)
                    .where(vehicle_latest.c.vehicle_id == bindparam("v"))
                    .values(record_count=vehicle_latest.c.record_count - bindparam("n")),
                    [{"v": v, "n": n} for v, n in sorted(counts.items())],
                )
        return DroppedTelemetry(tuple(sorted(dropped)), sum(counts.values()))

    @staticmethod
    def _count(conn: Connection, sql: str, counts: dict[str, int]) -> None:
        for vehicle_id, n in conn.execute(text(sql)):
            counts[vehicle_id] = counts.get(vehicle_id, 0) + int(n)

    def _lock(self, conn: Connection) -> None:
        # Creating, attaching and detaching take an exclusive lock on telemetry, and every query behind
        # it queues: give up after the lock timeout (a long query in the way) rather than stall ingest.
        conn.execute(text(f"SET LOCAL lock_timeout = {self._lock_timeout_ms}"))
        conn.execute(text(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})"))


class PartitionKeeper:
    """Creates the months ahead now and every ``interval_s`` in a background thread (PostgreSQL only)."""

    def __init__(self, partitions: TelemetryPartitions, interval_s: float = KEEPER_INTERVAL_S) -> None:
        self._partitions = partitions
        self._interval_s = interval_s
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start keeping months ahead; a SQLite store starts nothing."""
        if self._thread is not None or self._partitions.dialect != "postgresql":
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="microfleet-partitions", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (it finishes the round it is in)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        while not self._stopping.wait(self._interval_s):
            try:
                created = self._partitions.ensure_ahead() if self._partitions.supported() else []
            except Exception:  # a lost database must not end the thread: the next round tries again
                _log.exception(
                    "creating telemetry partitions ahead failed; next try in %.0f s", self._interval_s
                )
                continue
            if created:
                _log.info("created telemetry partitions %s", ", ".join(map(str, created)))
