"""The README's configuration table is generated from the config classes: keep it in sync."""

from pathlib import Path

from scripts.config_table import BEGIN, END, table

README = Path(__file__).resolve().parents[1] / "README.md"


def test_config_table_is_current():
    text = README.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    assert text[start:end] == table(), "README config table is stale: run python scripts/config_table.py"
