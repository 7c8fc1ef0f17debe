"""The constructor's keywords against the declared options and the docs.

Each option of the server is declared once (``wse::config::options``, whose
defaults are ``ServerConfig::default()``). These tests check the Python
surface against it: every keyword of ``RustWSEServer`` sets a declared
option, the option tables of docs/OPERATIONS.md name the keywords of each
option, and the signature's defaults give the documented defaults.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path

from wse_server import RustWSEServer, _wse_accel

DOCS = Path(__file__).resolve().parents[2] / "docs" / "OPERATIONS.md"
TABLE_HEADER = "| option | default | `wse serve` | Python | meaning |"


@dataclass
class Row:
    """A row of an option table (the format ``options::doc_rows`` reads)."""

    name: str
    default: str
    keywords: set[str]

    def default_for(self, label: str) -> str | None:
        for part in self.default.split("; ")[1:]:
            if part.startswith(label + ": "):
                return part[len(label) + 2 :]
        return None

    @property
    def base_default(self) -> str:
        return self.default.split("; ")[0]


def doc_rows() -> list[Row]:
    rows, in_table = [], False
    for line in (line.strip() for line in DOCS.read_text().splitlines()):
        if line == TABLE_HEADER:
            in_table = True
        elif not line.startswith("|"):
            in_table = False
        elif in_table and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            names = {n.strip("`") for n in cells[3].split(", ")} - {"—", ""}
            rows.append(Row(cells[0].strip("`"), cells[1], names))
    return rows


def test_every_keyword_sets_a_declared_option() -> None:
    keywords = set(inspect.signature(RustWSEServer).parameters)
    mapping = _wse_accel._KEYWORD_OPTIONS
    assert keywords == set(mapping), "keywords without an option, or options of no keyword"
    options = RustWSEServer("127.0.0.1", 0)._options()
    declared = {name for name, _ in options}
    assert set(mapping.values()) <= declared


def test_the_docs_name_the_keywords_of_every_option() -> None:
    mapping = _wse_accel._KEYWORD_OPTIONS
    rows = doc_rows()
    declared = [name for name, _ in RustWSEServer("127.0.0.1", 0)._options()]
    assert sorted(r.name for r in rows) == sorted(declared)
    for row in rows:
        expected = {k for k, option in mapping.items() if option == row.name}
        assert row.keywords == expected, row.name


def test_the_signature_defaults_give_the_documented_defaults() -> None:
    """A server built from the signature's defaults has every option at the
    documented default: the base one, or the cell's ``Python:`` value where
    the upstream parameters start elsewhere."""
    values = dict(RustWSEServer("127.0.0.1", 5007)._options())
    for row in doc_rows():
        expected = row.default_for("Python") or row.base_default
        assert values[row.name] == expected, row.name
    assert doc_rows()[0].name == "host"


def test_a_keyword_changes_the_option_it_is_mapped_to() -> None:
    """The mapping is the code that applies it: a few samples."""
    base = dict(RustWSEServer("127.0.0.1", 0)._options())
    for keyword, value, shown in [
        ("max_outbound_queue_bytes", 3 << 20, "3 MiB"),
        ("max_inbound_queue_size", 7, "7"),
        ("recovery_buffer_size", 1000, "1,024"),  # rounded up as upstream
        ("retention_max_records", 5, "5"),
        ("app_events", False, "discard"),
    ]:
        option = _wse_accel._KEYWORD_OPTIONS[keyword]
        changed = dict(RustWSEServer("127.0.0.1", 0, **{keyword: value})._options())
        assert changed[option] == shown, keyword
        assert {k for k in base if base[k] != changed[k]} == {option}, keyword
