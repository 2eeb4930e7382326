"""Reading a scan's feed (JSONL, CSV or Parquet) as a stream of rows, with a cap on rows and on memory.

A feed arrives compressed (a zstd Parquet of 16 KB can hold 2,000,000 identical rows), so nothing is
materialised before it is counted: Parquet's row count and uncompressed size come from its footer and
are checked before a single page is decoded, then rows are decoded a batch at a time; JSONL and CSV are
read a line at a time. Every refusal is a 422 (or 413 for size) naming the row: invalid UTF-8, a CSV
cell over the csv module's limit, duplicate header columns, non-finite numbers, text no database stores.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Iterator

from service.core.errors import DomainError, InvalidInput, TooLarge
from service.core.validation import json_problem

FORMATS = ("jsonl", "csv", "parquet")
PARQUET_BATCH_ROWS = 1024
# What a Parquet feed may decode to: 100,000 listings of a few hundred bytes each is ~50 MB.
MAX_PARQUET_UNCOMPRESSED_BYTES = 256 * 1024 * 1024


def invalid(row: int | None, message: str) -> DomainError:
    return InvalidInput("invalid_feed", f"row {row}: {message}" if row is not None else message)


def too_many(max_rows: int) -> DomainError:
    return TooLarge(
        "feed_too_large", f"At most {max_rows} listings per scan (COUNTERFEIT_MAX_SCAN_LISTINGS)."
    )


def feed_format(filename: str | None, declared: str | None) -> str:
    fmt = declared or (filename or "").rsplit(".", 1)[-1].lower()
    fmt = {"ndjson": "jsonl", "json": "jsonl"}.get(fmt, fmt)
    if fmt not in FORMATS:
        raise InvalidInput(
            "invalid_feed", f"Feed format: one of {', '.join(FORMATS)} (from format= or the file name)."
        )
    return fmt


def read_feed(data: bytes, fmt: str, max_rows: int) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(row number, fields)`` one row at a time (empty CSV cells and nulls dropped); 413 as soon as a row
    past ``max_rows`` is seen, so no more than ``max_rows`` rows are ever decoded."""
    rows = {"jsonl": _jsonl_rows, "csv": _csv_rows, "parquet": _parquet_rows}[fmt](data, max_rows)
    for number, row in rows:
        if number > max_rows:
            raise too_many(max_rows)
        problem = json_problem(row)
        if problem:
            raise invalid(number, problem)
        yield number, row


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _jsonl_rows(data: bytes, max_rows: int) -> Iterator[tuple[int, dict[str, Any]]]:
    number = 0
    for line_number, raw in enumerate(io.BytesIO(data), 1):
        if not raw.strip():
            continue
        number += 1
        try:
            row = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
        except UnicodeDecodeError as exc:
            raise invalid(number, f"not UTF-8 (byte {exc.start} of line {line_number})") from None
        except ValueError as exc:  # JSONDecodeError, NaN/Infinity
            raise invalid(number, f"not JSON ({getattr(exc, 'msg', exc)})") from None
        if not isinstance(row, dict):
            raise invalid(number, "not a JSON object")
        yield number, row


def _decoded_lines(data: bytes) -> Iterator[str]:
    """The feed's lines as text, each decoded on its own, so invalid UTF-8 is reported with its line."""
    for line_number, raw in enumerate(io.BytesIO(data), 1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput(
                "invalid_feed", f"line {line_number}: not UTF-8 (byte {exc.start} of the line)"
            ) from None
        yield line.removeprefix("\ufeff") if line_number == 1 else line


def _csv_rows(data: bytes, max_rows: int) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.reader(_decoded_lines(data))  # csv joins a quoted cell's lines itself
    number = 0
    try:
        header = next(reader, None)
        if header is None:
            return
        duplicated = sorted({name for name in header if header.count(name) > 1})
        if duplicated:
            raise invalid(None, f"the header names {', '.join(map(repr, duplicated))} more than once")
        for cells in reader:
            if not any(cells):
                continue
            number += 1
            if len(cells) > len(header):
                raise invalid(number, "more cells than the header has columns")
            yield number, split_lists({name: value for name, value in zip(header, cells) if value != ""})
    except csv.Error as exc:  # e.g. a cell over csv.field_size_limit() (131,072 characters)
        raise invalid(number + 1, f"not CSV ({exc})") from None


def _parquet_rows(data: bytes, max_rows: int) -> Iterator[tuple[int, dict[str, Any]]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        feed = pq.ParquetFile(io.BytesIO(data))
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise InvalidInput("invalid_feed", f"not a Parquet file ({exc})") from None
    meta = feed.metadata
    if meta.num_rows > max_rows:  # from the footer: nothing decoded yet
        raise too_many(max_rows)
    uncompressed = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    if uncompressed > MAX_PARQUET_UNCOMPRESSED_BYTES:
        raise TooLarge(
            "feed_too_large",
            f"The Parquet feed decodes to {uncompressed} bytes; at most "
            f"{MAX_PARQUET_UNCOMPRESSED_BYTES} are read.",
        )
    number = 0
    try:
        for batch in feed.iter_batches(batch_size=PARQUET_BATCH_ROWS):
            for row in batch.to_pylist():
                number += 1
                yield number, split_lists({k: v for k, v in row.items() if v is not None})
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise invalid(number + 1, f"cannot be decoded ({exc})") from None


def split_lists(row: dict[str, Any]) -> dict[str, Any]:
    """CSV (and string Parquet) cells list photos separated by spaces or ``|``."""
    for name in ("image_urls", "image_files"):
        if isinstance(row.get(name), str):
            row[name] = row[name].replace("|", " ").split()
    return row
