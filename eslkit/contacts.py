"""Contacts for the popup: look a caller's number up in a CSV file or an SQLite database.

CSV: a header row, then one contact per row.  The number is in a column named
``number`` (or ``phone``); ``name`` is shown first; every other column
(``company``, ``note``...) is shown after it.  A contact with two numbers is
two rows.

SQLite: a table ``contacts`` with the same columns (``number`` or ``phone``
required, anything else shown).

Numbers are compared after normalising both sides:

1. everything but digits is dropped (spaces, dashes, dots, brackets), and a
   leading ``+`` or ``00`` (international prefix) is dropped too;
2. leading zeros are dropped (a national trunk prefix: ``020 7946 0958`` →
   ``2079460958``);
3. equal results match; otherwise, when both have at least 7 digits and one
   ends with the other, they match (``+44 20 7946 0958`` and
   ``020 7946 0958``).  The longest such match wins.

The whole file is read once at start-up; a missing or unusable file is an
`InputFileError` (exit code 11) with the fix.
"""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path
from typing import Optional, Union

from eslkit.errors import InputFileError

__all__ = ["Contacts", "normalise_number", "load_contacts"]

NUMBER_COLUMNS = ("number", "phone")
MIN_SUFFIX = 7  # digits two numbers must share at the end to be the same line
MAX_FIELD = 256


def normalise_number(number: Optional[str]) -> str:
    """`+44 (0)20-7946 0958` → `4402079460958`; see the module's rules."""
    if not number:
        return ""
    digits = "".join(ch for ch in number if "0" <= ch <= "9")
    return digits.lstrip("0")


class Contacts:
    """Contact records keyed by normalised number; ``columns``: the file's columns as the
    records name them (``number`` first), what ``{contact_<column>}`` templates may use."""

    def __init__(self, records: list[dict], columns: Optional[list[str]] = None):
        if columns is None:
            columns = list(dict.fromkeys(key for record in records for key in record))
        self.columns = columns
        self._exact: dict[str, dict] = {}
        self._by_tail: dict[str, list[str]] = {}
        for record in records:
            key = normalise_number(record.get("number"))
            if not key or key in self._exact:
                continue  # the first row for a number wins
            self._exact[key] = record
            if len(key) >= MIN_SUFFIX:
                self._by_tail.setdefault(key[-MIN_SUFFIX:], []).append(key)

    def __len__(self) -> int:
        return len(self._exact)

    def lookup(self, number: Optional[str]) -> Optional[dict]:
        key = normalise_number(number)
        if not key:
            return None
        found = self._exact.get(key)
        if found is not None or len(key) < MIN_SUFFIX:
            return dict(found) if found is not None else None
        best = None
        for other in self._by_tail.get(key[-MIN_SUFFIX:], ()):
            if other.endswith(key) or key.endswith(other):
                if best is None or len(other) > len(best):
                    best = other
        return dict(self._exact[best]) if best is not None else None

    __call__ = lookup


def load_contacts(path: Union[str, Path]) -> Contacts:
    """Read a CSV file or an SQLite database (told apart by its first bytes)."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            head = f.read(16)
    except OSError as exc:
        raise InputFileError(
            f"Cannot read the contacts file {path}: {exc.strerror or exc}.",
            "Give --contacts a CSV file or an SQLite database (see docs/popup.md).",
        ) from exc
    if head.startswith(b"SQLite format 3\x00"):
        return Contacts(*_sqlite_records(path))
    return Contacts(*_csv_records(path))


def _columns(fields: list[str], number_col: str) -> list[str]:
    """The columns as `_clean_record` names them: the number's first."""
    keys = [str(f).strip().lower()[:64] for f in fields if f and f != number_col]
    return list(dict.fromkeys(["number", *(k for k in keys if k)]))


def _clean_record(row: dict, number_col: str) -> dict:
    record = {"number": (row.get(number_col) or "").strip()[:MAX_FIELD]}
    for key, value in row.items():
        if key is None or key == number_col or value is None:
            continue
        key = str(key).strip().lower()[:64]
        if key and key not in record:
            record[key] = str(value).strip()[:MAX_FIELD]
    return record


def _csv_records(path: Path) -> tuple[list[dict], list[str]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            fields = [(name or "").strip().lower() for name in reader.fieldnames or []]
            number_col = next((c for c in NUMBER_COLUMNS if c in fields), None)
            if number_col is None:
                raise InputFileError(
                    f"The contacts file {path} has no 'number' or 'phone' column.",
                    "Make the first line a header such as: number,name,company",
                )
            reader.fieldnames = fields
            return [_clean_record(row, number_col) for row in reader], _columns(fields, number_col)
    except UnicodeDecodeError:
        raise InputFileError(
            f"The contacts file {path} is neither UTF-8 CSV nor an SQLite database.",
            "Save it as CSV (UTF-8) with a header line such as: number,name,company",
        ) from None
    except csv.Error as exc:
        raise InputFileError(f"The contacts file {path} is not valid CSV: {exc}.", "Fix the line it names.") from None


def _sqlite_records(path: Path) -> tuple[list[dict], list[str]]:
    try:
        # Read-only: a popup never writes to the user's database.
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            db.row_factory = sqlite3.Row
            cols = [r[1].lower() for r in db.execute("PRAGMA table_info(contacts)")]
            number_col = next((c for c in NUMBER_COLUMNS if c in cols), None)
            if number_col is None:
                raise InputFileError(
                    f"The database {path} has no table 'contacts' with a 'number' or 'phone' column.",
                    "CREATE TABLE contacts (number TEXT, name TEXT, company TEXT, ...)",
                )
            rows = db.execute("SELECT * FROM contacts").fetchall()
            return [_clean_record({k.lower(): r[k] for k in r.keys()}, number_col) for r in rows], \
                _columns(cols, number_col)
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise InputFileError(f"Cannot read the contacts database {path}: {exc}.", "Check the file with the sqlite3 tool.") from None
