"""Telemetry files into the store: the twin's Parquet, protocol-v1 NDJSON and protocol-v1 CSV.

An import is an administrator's act on the store. Each file is read in batches (:data:`BATCH_RECORDS`
records); each batch is decoded into protocol-v1 records and refused items, split by vehicle, and each
vehicle's share is handed to :meth:`IngestService.ingest_batch` as if that car had sent it with its own
credential: records are stored exactly once (a re-import is all duplicates), a conflicting record and a
refused row naming a registered car are quarantined with that car's credential (so ``quarantine replay``
works on them), and the store marks the cars' history stale for derivation, as over HTTP.

Rows of a vehicle that is not registered are refused (``unknown_vehicle``) and neither stored nor
quarantined, unless the importer registers unknown vehicles (``microfleet import --register``). A row
naming no valid vehicle id cannot be anybody's: it is refused with its reason and counted in the report,
not quarantined (the file itself keeps it). Columns that are not protocol-v1 fields (Parquet, CSV) are
dropped by name and listed once in the report.

CSV (docs/telemetry.md, "Importing files"): a header of protocol-v1 field names; an empty cell is "not
measured"; booleans ``true``/``false`` (any case); ``tyre_pressure_kpa`` and ``dtc_codes`` as values
separated by ``;``. A row whose cell count differs from the header's is ``malformed_json`` (its framing is
broken, whatever the text format).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, TextIO

import msgspec

from microfleet.domain.telemetry import (
    SIGNAL_NAMES,
    SIGNALS,
    VEHICLE_ID_PATTERN,
    RejectionReason,
    TelemetryRecord,
)
from microfleet.domain.telemetry_codec import DecodedBatch, DecodeLimits, decode_ndjson
from microfleet.domain.validation import Rejection, check_item, check_record
from microfleet.errors import ConfigurationError, NotFoundError
from microfleet.services.ingest import IngestReport, IngestService

if TYPE_CHECKING:
    import pyarrow as pa

FileFormat = Literal["parquet", "ndjson", "csv"]
FORMATS: Final[tuple[FileFormat, ...]] = ("parquet", "ndjson", "csv")
BATCH_RECORDS: Final = 5000
FIELDS: Final[tuple[str, ...]] = ("vehicle_id", "ts_ms", *SIGNAL_NAMES)
LIST_SEPARATOR: Final = ";"
_SUFFIXES: Final[dict[str, FileFormat]] = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".csv": "csv",
}
_VEHICLE_ID = re.compile(VEHICLE_ID_PATTERN)
_POSITION = re.compile(r"^(record|line) \d+")
_KIND: Final[dict[str, str]] = {"vehicle_id": "text", "ts_ms": "int"} | {s.name: s.kind for s in SIGNALS}


def detect_format(path: Path, given: str | None = None) -> FileFormat:
    """The file's format: as given, else by its suffix (.parquet/.pq, .ndjson/.jsonl, .csv)."""
    if given is not None:
        if given not in FORMATS:
            raise ConfigurationError(f"format {given!r} is not one of {', '.join(FORMATS)}")
        return given
    found = _SUFFIXES.get(path.suffix.lower())
    if found is None:
        raise ConfigurationError(
            f"cannot tell the format of {path.name} from its suffix; name it .parquet, .ndjson, .jsonl or "
            f".csv, or give --format {'/'.join(FORMATS)}"
        )
    return found


@dataclass(slots=True)
class Chunk:
    """One batch of a file: its records and refused items (indices are positions in the file)."""

    decoded: DecodedBatch
    done: int  # progress after this chunk, in the reader's unit (rows or bytes)


@dataclass(slots=True)
class FileReader:
    """A file opened for import: how much there is (for a progress bar), what it drops, its chunks."""

    total: int
    unit: Literal["rows", "bytes"]
    dropped_columns: tuple[str, ...]
    chunks: Iterator[Chunk]


# --- decoding -------------------------------------------------------------------------------------------


def _located(rejection: Rejection, where: str) -> Rejection:
    """The rejection with its detail naming the row's place in the file, not in its batch."""
    return replace(rejection, detail=_POSITION.sub(where, rejection.detail, count=1))


def _judge_rows(rows: list[dict[str, Any]], positions: list[int], where: str) -> DecodedBatch:
    """Records from rows of plain values (a null or absent signal: not measured), judged as JSON items."""
    try:
        records = msgspec.convert(rows, list[TelemetryRecord])
    except msgspec.ValidationError:
        pass  # some row is refused: judge each alone below, so it costs only itself
    else:
        batch = DecodedBatch([], [], len(rows))
        for i, (position, record) in enumerate(zip(positions, records, strict=True)):
            outcome = check_record(record, position, "")
            if isinstance(outcome, Rejection):
                text = json.dumps({k: v for k, v in rows[i].items() if v is not None}, ensure_ascii=False)
                batch.rejections.append(_located(replace(outcome, raw_text=text), f"{where} {position}"))
            else:
                batch.records.append((position, outcome))
        return batch
    batch = DecodedBatch([], [], len(rows))
    for position, given in zip(positions, rows, strict=True):
        row = {k: v for k, v in given.items() if v is not None}  # as JSON says it: absent, not null
        try:
            outcome = check_record(msgspec.convert(row, TelemetryRecord), position, "")
        except msgspec.ValidationError:
            outcome = check_item(row, position, "")
        if isinstance(outcome, Rejection):
            outcome = replace(outcome, raw_text=json.dumps(row, ensure_ascii=False))
            batch.rejections.append(_located(outcome, f"{where} {position}"))
        else:
            batch.records.append((position, outcome))
    return batch


def _parquet_column(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """A column as protocol v1 holds it: NaN is "not measured" (pandas' missing value), times as epoch ms."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    if pa.types.is_floating(kind):
        return pc.if_else(pc.is_nan(column), pa.scalar(None, kind), column)
    if pa.types.is_timestamp(kind):
        return pc.cast(pc.cast(column, pa.timestamp("ms", kind.tz)), pa.int64())
    return column


def read_parquet(path: Path, batch_records: int = BATCH_RECORDS) -> FileReader:
    """A Parquet file (the twin's ``telemetry.parquet``, or any with protocol-v1 columns)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        with pq.ParquetFile(path) as parquet:
            names = parquet.schema_arrow.names
            total = parquet.metadata.num_rows
    except (pa.ArrowException, OSError) as exc:
        raise ConfigurationError(f"{path.name} is not a readable Parquet file: {exc}") from None
    _require_key_columns(path, names)
    kept = [n for n in names if n in FIELDS]

    def chunks() -> Iterator[Chunk]:
        done = 0
        with pq.ParquetFile(path) as parquet:
            for part in parquet.iter_batches(batch_size=batch_records, columns=kept):
                table = pa.table({n: _parquet_column(part.column(n)) for n in kept})
                rows = table.to_pylist()  # a null is "not measured": left out if a row is refused
                positions = list(range(done + 1, done + 1 + len(rows)))  # rows counted from 1, like lines
                done += len(rows)
                yield Chunk(_judge_rows(rows, positions, "row"), done)

    return FileReader(total, "rows", _dropped(names), chunks())


def read_ndjson(path: Path, limits: DecodeLimits, batch_records: int = BATCH_RECORDS) -> FileReader:
    """A protocol-v1 NDJSON file (one JSON record per line), decoded by the protocol's own codec."""
    size = path.stat().st_size
    codec_limits = DecodeLimits(max(limits.max_records, batch_records), limits.max_record_bytes)

    def decode(lines: list[bytes], numbers: list[int], done: int) -> Chunk:
        decoded = decode_ndjson(b"\n".join(lines), codec_limits)
        records = [(numbers[i], r) for i, r in decoded.records]
        rejections = [
            _located(replace(r, index=numbers[r.index]), f"line {numbers[r.index]}")
            for r in decoded.rejections
        ]
        return Chunk(DecodedBatch(records, rejections, decoded.item_count), done)

    def chunks() -> Iterator[Chunk]:
        lines: list[bytes] = []
        numbers: list[int] = []
        done = 0
        with path.open("rb") as file:
            for number, line in enumerate(file, start=1):
                done += len(line)
                if not line.strip():
                    continue
                lines.append(line.rstrip(b"\r\n"))
                numbers.append(number)
                if len(lines) == batch_records:
                    yield decode(lines, numbers, done)
                    lines, numbers = [], []
        if lines:
            yield decode(lines, numbers, done)

    return FileReader(size, "bytes", (), chunks())


def _csv_cell(name: str, text: str) -> Any:
    """One CSV cell as the JSON value it stands for; text that is no such value stays text (wrong_type)."""
    kind = _KIND[name]
    if kind in ("text", "gear"):
        return text
    if kind == "bool":
        return {"true": True, "false": False}.get(text.strip().lower(), text)
    if kind == "codes":
        return [part.strip() for part in text.split(LIST_SEPARATOR)]
    if kind == "tyres":
        return [_csv_number(part.strip()) for part in text.split(LIST_SEPARATOR)]
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            return text
    return _csv_number(text)


def _csv_number(text: str) -> Any:
    try:
        return float(text)  # "nan" and "inf" become NaN and infinity: refused as not_finite
    except ValueError:
        return text


def read_csv(path: Path, batch_records: int = BATCH_RECORDS) -> FileReader:
    """A protocol-v1 CSV file: a header of field names, one record per row (docs/telemetry.md)."""
    size = path.stat().st_size
    with _open_text(path) as file:
        try:
            header = [name.strip() for name in next(csv.reader(file))]
        except StopIteration:
            raise ConfigurationError(f"{path.name} is empty: a CSV file starts with a header row") from None
        except csv.Error as exc:
            raise ConfigurationError(f"{path.name}: the header row is not CSV ({exc})") from None
    _require_key_columns(path, header)
    kept = [(i, n) for i, n in enumerate(header) if n in FIELDS]
    id_column = header.index("vehicle_id")

    def refused_row(cells: Sequence[str], line: int, why: str) -> Rejection:
        vehicle_id = cells[id_column] if id_column < len(cells) else None
        text = io.StringIO()
        csv.writer(text, lineterminator="").writerow(cells)
        return Rejection(
            line, RejectionReason.MALFORMED_JSON, f"line {line}: {why}", text.getvalue(), vehicle_id
        )

    def chunks() -> Iterator[Chunk]:
        rows: list[dict[str, Any]] = []
        positions: list[int] = []
        broken: list[Rejection] = []
        with _open_text(path) as file:
            reader = csv.reader(file)
            next(reader)  # the header
            while True:
                try:
                    cells = next(reader)
                except StopIteration:
                    break
                except csv.Error as exc:
                    line = reader.line_num
                    broken.append(refused_row([], line, f"not CSV ({exc})"))
                    continue
                line = reader.line_num
                if not any(cell.strip() for cell in cells):
                    continue  # a blank line holds no record
                if len(cells) != len(header):
                    broken.append(
                        refused_row(cells, line, f"{len(cells)} cells where the header names {len(header)}")
                    )
                else:
                    rows.append({n: _csv_cell(n, cells[i]) for i, n in kept if cells[i] != ""})
                    positions.append(line)
                if len(rows) + len(broken) >= batch_records:
                    yield _csv_chunk(rows, positions, broken, file.buffer.tell())  # read ahead a little
                    rows, positions, broken = [], [], []
            if rows or broken:
                yield _csv_chunk(rows, positions, broken, size)

    return FileReader(size, "bytes", _dropped(header), chunks())


def _open_text(path: Path) -> TextIO:
    # Bytes that are not UTF-8 reach the validator as lone surrogates: refused as invalid_utf8, kept escaped.
    return path.open(encoding="utf-8-sig", errors="surrogateescape", newline="")


def _csv_chunk(rows: list[dict[str, Any]], positions: list[int], broken: list[Rejection], done: int) -> Chunk:
    decoded = _judge_rows(rows, positions, "line")
    decoded.rejections.extend(broken)
    decoded.item_count += len(broken)
    return Chunk(decoded, done)


def _require_key_columns(path: Path, names: Sequence[str]) -> None:
    missing = [n for n in ("vehicle_id", "ts_ms") if n not in names]
    if missing:
        raise ConfigurationError(
            f"{path.name} has no {' and no '.join(missing)} column: every protocol-v1 record needs "
            "vehicle_id and ts_ms (UTC epoch milliseconds)"
        )


def _dropped(names: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(n for n in names if n not in FIELDS))


def open_file(
    path: Path, file_format: FileFormat, limits: DecodeLimits, batch_records: int = BATCH_RECORDS
) -> FileReader:
    """Open a telemetry file of the given format for import."""
    if not path.is_file():
        raise ConfigurationError(f"{path} is not a file")
    if file_format == "parquet":
        return read_parquet(path, batch_records)
    if file_format == "ndjson":
        return read_ndjson(path, limits, batch_records)
    return read_csv(path, batch_records)


# --- ingesting ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class ImportReport:
    """What one import did, in totals: the same three verdicts as over HTTP, and what was dropped."""

    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    quarantined: int = 0  # of the rejected, those kept in quarantine (a registered car's records)
    reasons: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)  # one detail per reason
    dropped_columns: dict[str, tuple[str, ...]] = field(default_factory=dict)  # by file name
    unknown_vehicles: Counter[str] = field(default_factory=Counter)  # refused rows by vehicle id
    registered: list[str] = field(default_factory=list)  # vehicles registered by this import
    vehicles: set[str] = field(default_factory=set)  # vehicles with a record stored anew

    @property
    def records(self) -> int:
        """Every record (row, line) read."""
        return self.accepted + self.duplicate + self.rejected

    def top_reasons(self, n: int = 5) -> list[tuple[str, int, str]]:
        """The most frequent rejection reasons: (reason, count, one example's detail)."""
        return [(reason, count, self.examples[reason]) for reason, count in self.reasons.most_common(n)]

    def refuse(self, reason: str, detail: str | None, count: int = 1) -> None:
        """Count records refused without reaching the store (nobody's, or an unregistered vehicle's)."""
        self.rejected += count
        self.reasons[reason] += count
        self.examples.setdefault(reason, detail or reason)

    def add(self, report: IngestReport, vehicle_id: str) -> None:
        """Count one vehicle's ingest report (its rejected records are in quarantine)."""
        self.accepted += report.accepted
        self.duplicate += report.duplicate
        if report.accepted:
            self.vehicles.add(vehicle_id)
        for result in report.results:
            if result.status == "rejected":
                self.quarantined += 1
                self.refuse(result.reason or "rejected", result.detail)


class FileImporter:
    """Decode files and ingest their records as each record's own vehicle, batch by batch."""

    def __init__(
        self,
        ingest: IngestService,
        is_registered: Callable[[str], bool],
        *,
        limits: DecodeLimits,
        clock: Callable[[], int],
        register: Callable[[str], object] | None = None,
    ) -> None:
        """``register`` (when given) registers an unknown vehicle id instead of refusing its rows."""
        self._ingest = ingest
        self._is_registered = is_registered
        self._limits = limits
        self._clock = clock
        self._register = register
        self._known: dict[str, bool] = {}

    def open(self, path: Path, file_format: FileFormat, batch_records: int = BATCH_RECORDS) -> FileReader:
        """Open a file for :meth:`ingest_chunk` (and for a progress bar: its size and unit)."""
        return open_file(path, file_format, self._limits, batch_records)

    def ingest_chunk(self, chunk: Chunk, report: ImportReport, *, source: str) -> None:
        """Ingest one chunk, vehicle by vehicle, adding its verdicts to ``report``."""
        by_vehicle: dict[str, tuple[list[tuple[int, TelemetryRecord]], list[Rejection]]] = {}
        for index, record in chunk.decoded.records:
            by_vehicle.setdefault(record.vehicle_id, ([], []))[0].append((index, record))
        for rejection in chunk.decoded.rejections:
            vehicle_id = rejection.vehicle_id
            if vehicle_id is None or not _VEHICLE_ID.match(vehicle_id):
                report.refuse(rejection.reason.value, rejection.detail)  # nobody's: the file keeps it
            else:
                by_vehicle.setdefault(vehicle_id, ([], []))[1].append(rejection)
        now_ms = self._clock()
        for vehicle_id, (records, rejections) in by_vehicle.items():
            if not self._known_vehicle(vehicle_id, report):
                count = len(records) + len(rejections)
                report.unknown_vehicles[vehicle_id] += count
                report.refuse(
                    RejectionReason.UNKNOWN_VEHICLE.value,
                    f"vehicle {vehicle_id!r} is not registered: register it (microfleet admin add-vehicle) "
                    "or import with --register",
                    count,
                )
                continue
            decoded = DecodedBatch(records, rejections, len(records) + len(rejections))
            ingested = self._ingest.ingest_batch(
                decoded, credential_vehicle_id=vehicle_id, source=source, now_ms=now_ms
            )
            report.add(ingested, vehicle_id)

    def _known_vehicle(self, vehicle_id: str, report: ImportReport) -> bool:
        known = self._known.get(vehicle_id)
        if known is None:
            known = self._is_registered(vehicle_id)
            if not known and self._register is not None:
                self._register(vehicle_id)
                report.registered.append(vehicle_id)
                known = True
            self._known[vehicle_id] = known
        return known


def registered_by(require_vehicle: Callable[[str], object]) -> Callable[[str], bool]:
    """``is_registered`` from a lookup that raises :class:`NotFoundError` for an unknown vehicle."""

    def is_registered(vehicle_id: str) -> bool:
        try:
            require_vehicle(vehicle_id)
        except NotFoundError:
            return False
        return True

    return is_registered


def import_source(path: Path) -> str:
    """The quarantine's source for an import's refused records (its column holds 200 characters)."""
    return f"import {path.name}"[:200]


__all__ = [
    "BATCH_RECORDS",
    "FORMATS",
    "Chunk",
    "FileFormat",
    "FileImporter",
    "FileReader",
    "ImportReport",
    "detect_format",
    "import_source",
    "open_file",
    "registered_by",
]
