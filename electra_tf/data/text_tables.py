"""Reading labelled rows from a CSV, TSV or JSONL file by column name: the one reader behind
every task whose examples are texts (or text pairs) with a label or a score.

    .csv          comma-separated, a header row naming the columns, standard CSV quoting
    .tsv / .tab   tab-separated, a header row, standard CSV quoting
    .jsonl        one JSON object per line, the columns its keys

Bytes that are not UTF-8 are replaced (and counted in the warning), an Excel byte-order mark is
dropped, and a missing column or a missing/empty value is one `DataError` line naming the file,
the line and the setting to change.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import os
from typing import Sequence

from electra_tf.data.corpus import CorpusStats, decode_line
from electra_tf.errors import DataError

logger = logging.getLogger(__name__)

TABLE_SUFFIXES = (".csv", ".tsv", ".tab", ".jsonl")


def read_table(path: str, columns: Sequence[str], settings: Sequence[str],
               what: str = "table") -> list[tuple[str, ...]]:
    """The values of `columns` on every row of `path`, stripped, as strings.

    Args:
        path: a `.csv`, `.tsv`/`.tab` or `.jsonl` file (any other suffix is read as CSV).
        columns: the column names (JSON keys) to read, in the order returned.
        settings: for each column, the config setting that names it (for the error message),
            e.g. `task.text_column`.
        what: what the file holds, for messages ("CSV task", "pair file").

    Returns:
        one tuple of `len(columns)` strings per row. A value that is missing or empty is an
        error: every column asked for is required.
    """
    if path is None or not os.path.isfile(path):
        raise DataError(f"{what}: file not found: {path!r}.")
    text = read_decoded_text(path)
    if path.endswith(".jsonl"):
        records = _jsonl_records(path, text)
    else:
        records = _delimited_records(path, text, columns, settings)
    rows = []
    for line, record in records:
        values = []
        for column, setting in zip(columns, settings):
            value = record.get(column)
            if value is None:
                raise DataError(f"{path}:{line}: no {column!r} value (the column {setting} "
                                "names); give every row one, or set it to the right column.")
            value = str(value).strip()
            if not value:
                raise DataError(f"{path}:{line}: the {column!r} column is empty; give the row "
                                "its value or remove the row.")
            values.append(value)
        rows.append(tuple(values))
    return rows


def text_lines(text: str) -> list[str]:
    """The lines of `text`, split at "\n", "\r\n" and "\r" only. (`str.splitlines` also
    splits at U+2028, U+0085, form feeds and other separators, which reviews hold and which
    JSON strings may carry unescaped: it would cut a JSON line or a TSV row in two.)"""
    lines = io.StringIO(text, newline=None).read().split("\n")
    return lines[:-1] if lines and not lines[-1] else lines


def read_decoded_text(path: str) -> str:
    """The file's text: bytes that are not UTF-8 replaced by U+FFFD (with one warning that
    counts the lines), a leading byte-order mark dropped (Excel's "CSV UTF-8" writes one, which
    would otherwise become part of the first column's name)."""
    with open(path, "rb") as f:
        raw = f.read()
    stats = CorpusStats()
    text = "".join(decode_line(line, stats) for line in raw.splitlines(keepends=True))
    report_invalid_utf8(path, stats, "line(s)")
    return text.removeprefix("\ufeff")


def _delimited_records(path, text, columns, settings):
    delimiter = "\t" if path.endswith((".tsv", ".tab")) else ","
    with any_field_size():
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
        header = reader.fieldnames
        missing = [f"{c!r} ({s})" for c, s in zip(columns, settings)
                   if header is None or c not in header]
        if missing:
            raise DataError(f"{path}: the header {header} must name the column(s) "
                            f"{', '.join(missing)}; rename the header or change the setting.")
        return [(reader.line_num, row) for row in reader]


def _jsonl_records(path, text):
    records = []
    for number, line in enumerate(text_lines(text), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if not isinstance(record, dict):
            raise DataError(f"{path} line {number}: not a JSON object; give one object per "
                            "line, e.g. {\"text\": \"...\", \"label\": \"pos\"}.")
        records.append((number, record))
    return records


@contextlib.contextmanager
def any_field_size():
    """Lifts the csv module's 131,072-character field limit (a long review is a valid field)
    while a file is read, then restores the caller's limit (it is process-wide)."""
    previous = csv.field_size_limit()
    csv.field_size_limit(2 ** 31 - 1)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def report_invalid_utf8(source: str, stats: CorpusStats, unit: str) -> None:
    if stats.lines_with_invalid_utf8:
        logger.warning("%s: %d %s had bytes that are not UTF-8; they were replaced by U+FFFD. "
                       "Re-save the data as UTF-8 to keep those characters.", source,
                       stats.lines_with_invalid_utf8, unit)
