"""Contacts: CSV and SQLite files on disk, number normalisation, clean errors."""

from __future__ import annotations

import sqlite3

import pytest

from eslkit.contacts import load_contacts, normalise_number
from eslkit.errors import InputFileError


@pytest.mark.parametrize("raw,norm", [
    ("6208", "6208"),
    ("+44 20 7946 0958", "442079460958"),
    ("0044 (0)20-7946.0958", "4402079460958"),
    ("020 7946 0958", "2079460958"),
    ("", ""),
    (None, ""),
])
def test_normalise(raw, norm):
    assert normalise_number(raw) == norm


def write_csv(tmp_path, text):
    path = tmp_path / "contacts.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_lookup(tmp_path):
    path = write_csv(tmp_path, "Number,Name,Company\n6208,Ada Lovelace,Analytical Engines\n"
                               "+44 20 7946 0958,Grace Hopper,Navy\n")
    contacts = load_contacts(path)
    assert len(contacts) == 2
    assert contacts.lookup("6208") == {"number": "6208", "name": "Ada Lovelace", "company": "Analytical Engines"}
    # the same line written nationally, internationally, with 00, with spaces
    for number in ("020 7946 0958", "00442079460958", "+442079460958", "02079460958"):
        assert contacts.lookup(number)["name"] == "Grace Hopper", number
    # a suffix of at least 7 digits matches (a local number without its area code); 6 do not
    assert contacts.lookup("946 0958")["name"] == "Grace Hopper"
    assert contacts.lookup("46 0958") is None
    assert contacts.lookup("1234") is None
    assert contacts.lookup(None) is None


def test_phone_column_and_bom(tmp_path):
    path = write_csv(tmp_path, "\ufeffphone,name\n1001,Desk\n")
    assert load_contacts(path).lookup("1001")["name"] == "Desk"


def test_sqlite_lookup(tmp_path):
    path = tmp_path / "crm.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE contacts (number TEXT, name TEXT, account TEXT)")
    db.execute("INSERT INTO contacts VALUES ('+1 (555) 010-9999', 'Linus', 'A-17')")
    db.commit()
    db.close()
    found = load_contacts(path).lookup("15550109999")
    assert found == {"number": "+1 (555) 010-9999", "name": "Linus", "account": "A-17"}


@pytest.mark.parametrize("make,words", [
    (lambda p: None, "Cannot read"),
    (lambda p: p.write_text("name,company\nx,y\n"), "no 'number' or 'phone' column"),
    (lambda p: p.write_bytes(b"\xff\xfe\x00garbage\x80"), "neither UTF-8 CSV"),
])
def test_bad_files_are_clean_errors(tmp_path, make, words):
    path = tmp_path / "c.csv"
    make(path)
    with pytest.raises(InputFileError) as info:
        load_contacts(path)
    assert words in str(info.value) and info.value.exit_code == 11 and info.value.fix


def test_sqlite_without_contacts_table(tmp_path):
    path = tmp_path / "other.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE people (number TEXT)")
    db.commit()
    db.close()
    with pytest.raises(InputFileError, match="no table 'contacts'"):
        load_contacts(path)
