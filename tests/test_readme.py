"""The README's configuration tables come from the config classes: keep them in sync."""

from pathlib import Path

from scripts.config_table import BEGIN, END, table
from services.console.config import ConsoleConfig
from services.runtime.config import describe

README = Path(__file__).resolve().parents[1] / "README.md"


def test_config_table_is_current():
    text = README.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    assert text[start:end] == table(), "README config table is stale: run python scripts/config_table.py"


def test_console_settings_are_all_documented():
    text = README.read_text()
    console = text[text.index("## Console"):text.index("## Architecture")]
    missing = [var for var, _, _ in describe(ConsoleConfig) if f"| `{var}` |" not in console]
    assert missing == [], f"README's Console section lacks {missing}"
