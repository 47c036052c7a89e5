"""The energy schema: ``migrations/NNNN_name.sql``, applied by the runtime's migration runner
(checksummed: a file edited after it was applied is refused)."""

from __future__ import annotations

from pathlib import Path

from services.runtime.migrations import Migrations

MIGRATIONS = Migrations(Path(__file__).with_name("migrations"), lock_key=0x656E65726779)  # "energy"
