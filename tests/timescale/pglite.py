"""Real TimescaleDB for tests: PGlite (PostgreSQL 17 in WASM) with TimescaleDB 2.23, driven through
``tools/pglite/run_sql.mjs`` in Node.

* ``run_steps(steps, data_dir=None)``: one Node process, one job, results back (one-shot).
* ``Server``: one long-lived Node process (``run_sql.mjs --serve``) holding one database, for many
  jobs; PGlite takes ~2 s to start, so a test module shares one.
* ``Connection``: the asyncpg calls the stores use (execute / fetch / fetchrow / fetchval /
  transaction), over a ``Server``, so real store code (``services/ingest/store/migrate.py``) runs
  unchanged against TimescaleDB. Parameters travel as text (datetimes as ISO strings, lists as array
  literals); results come back typed by their column's type OID (timestamptz -> aware datetime,
  int8 -> int, numeric -> Decimal).

Why not asyncpg itself over ``@electric-sql/pglite-socket``: every socket shares PGlite's single
backend session (prepared statements and settings leak between connections, and asyncpg's pool
reset ``RESET ALL`` leaves ``search_path = pg_catalog``), and an SSLRequest wedges the bridge.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "tools" / "pglite" / "run_sql.mjs"
PACKAGE = ROOT / "node_modules" / "@unni-craftsman" / "pglite" / "package.json"
START_TIMEOUT_S = 120
JOB_TIMEOUT_S = 300

# PostgreSQL type OIDs the runner reports in ``fields``.
INT8, INT2, INT4, NUMERIC, TIMESTAMPTZ, TIMESTAMP, DATE = 20, 21, 23, 1700, 1184, 1114, 1082


def unavailable() -> str | None:
    """Why PGlite+TimescaleDB cannot run here, or None when it can."""
    if shutil.which("node") is None:
        return "node is not on PATH (CI installs it; `make deps` runs npm install)"
    if not PACKAGE.exists():
        return f"{PACKAGE.relative_to(ROOT)} missing: run `npm install` (or `make deps`)"
    return None


class SQLError(Exception):
    """A step failed in PostgreSQL; ``code`` is the SQLSTATE."""

    def __init__(self, message: str, code: str | None = None, sql: str | None = None) -> None:
        super().__init__(message if sql is None else f"{message}\n  in: {sql[:300]}")
        self.message = message
        self.code = code


def _param(v: Any) -> Any:
    """A Python value as the text PostgreSQL parses for an explicitly cast parameter."""
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) > 2**53:
        return str(v)  # JSON numbers are doubles in Node: send big integers (bigint max) as text
    if v is None or isinstance(v, (str, bool, int, float)):
        return v
    if isinstance(v, bytes):
        return "\\x" + v.hex()  # bytea's hex input form
    if isinstance(v, (datetime, date)):
        return v.isoformat()
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, timedelta):  # interval input syntax
        return f"{v.total_seconds()!r} seconds"
    if isinstance(v, (list, tuple)):  # array literal: {"a","b"}
        items = []
        for x in v:
            if x is None:
                items.append("NULL")
            else:
                s = str(_param(x)).replace("\\", "\\\\").replace('"', '\\"')
                items.append(f'"{s}"')
        return "{" + ",".join(items) + "}"
    if isinstance(v, dict):
        return json.dumps(v)
    raise TypeError(f"cannot pass {type(v).__name__} to PGlite")


def step(sql: str, *params: Any, multi: bool = False) -> dict:
    out: dict[str, Any] = {"sql": sql, "multi": multi}
    if params:
        out["params"] = [_param(p) for p in params]
    return out


def _steps(steps: Iterable[dict | str]) -> list[dict]:
    return [step(s, multi=True) if isinstance(s, str) else
            {**s, "params": [_param(p) for p in s.get("params", [])]} for s in steps]


def run_steps(steps: Iterable[dict | str], data_dir: str | os.PathLike | None = None, *,
              stop_on_error: bool = False) -> list[dict]:
    """Run ``steps`` in a fresh Node process (on ``data_dir`` if given, else in memory).

    A step is ``{"sql", "params"?, "multi"?}`` (or a plain string: a multi-statement script).
    Each result is ``{"rows", "fields", "affected"}`` or ``{"error", "code"}``.
    """
    job: dict[str, Any] = {"steps": _steps(steps), "stop_on_error": stop_on_error}
    if data_dir is not None:
        job["data_dir"] = str(data_dir)
    proc = subprocess.run(["node", str(RUNNER)], input=json.dumps(job), capture_output=True,
                          text=True, cwd=ROOT, timeout=JOB_TIMEOUT_S)
    if proc.returncode != 0:
        raise RuntimeError(f"run_sql.mjs exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout)["results"]


class Server:
    """One PGlite+TimescaleDB database in a long-lived Node process (``run_sql.mjs --serve``)."""

    def __init__(self, data_dir: str | os.PathLike | None = None) -> None:
        self._stderr = tempfile.TemporaryFile(mode="w+")
        args = ["node", str(RUNNER), "--serve"] + ([str(data_dir)] if data_dir is not None else [])
        self._proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=self._stderr, text=True, cwd=ROOT, bufsize=1)
        hello = self._read()
        if not hello.get("ready"):
            raise RuntimeError(f"run_sql.mjs --serve did not start: {hello}")

    def _read(self) -> dict:
        line = self._proc.stdout.readline()  # the runner answers every job with exactly one line
        if not line:
            self._stderr.seek(0)
            raise RuntimeError(f"run_sql.mjs --serve died (exit {self._proc.poll()}): "
                               f"{self._stderr.read()[-2000:]}")
        return json.loads(line)

    def run(self, steps: Iterable[dict | str], *, stop_on_error: bool = False) -> list[dict]:
        self._proc.stdin.write(json.dumps({"steps": _steps(steps), "stop_on_error": stop_on_error}) + "\n")
        self._proc.stdin.flush()
        answer = self._read()
        if "error" in answer and "results" not in answer:
            raise RuntimeError(f"bad job: {answer['error']}")
        return answer["results"]

    def check(self, steps: Sequence[dict | str]) -> list[list[dict]]:
        """Run ``steps``; raise SQLError on the first failure; return each step's typed rows."""
        steps = list(steps)
        results = self.run(steps, stop_on_error=True)
        for s, r in zip(steps, results):
            if "error" in r:
                raise SQLError(r["error"], r.get("code"), s if isinstance(s, str) else s["sql"])
        return [typed_rows(r) for r in results]

    def rows(self, sql: str, *params: Any) -> list[dict]:
        return self.check([step(sql, *params)])[0]

    def value(self, sql: str, *params: Any) -> Any:
        rows = self.rows(sql, *params)
        return next(iter(rows[0].values())) if rows else None

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._stderr.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


INT_ARRAYS = (1005, 1007, 1016)  # int2[], int4[], int8[] (PGlite returns bigints as text)


def _convert(value: Any, oid: int) -> Any:
    if value is None:
        return None
    if oid in (INT8, INT2, INT4):
        return int(value)
    if oid in INT_ARRAYS and isinstance(value, list):
        return [None if x is None else int(x) for x in value]
    if oid == NUMERIC:
        return Decimal(value)
    if oid in (TIMESTAMPTZ, TIMESTAMP) and isinstance(value, str):
        if value in ("infinity", "-infinity"):
            return value
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    if oid == DATE and isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    return value


def typed_rows(result: dict) -> list[dict]:
    types = {f["name"]: f["type"] for f in result.get("fields", [])}
    return [{k: _convert(v, types.get(k, 0)) for k, v in row.items()} for row in result.get("rows", [])]


class Connection:
    """The asyncpg ``Connection`` calls the stores make, over a ``Server`` (one session, like one
    asyncpg connection). Rows are dicts. Errors raise ``SQLError``."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self._depth = 0

    async def execute(self, sql: str, *args: Any) -> str:
        # asyncpg: no args -> simple protocol (multi-statement scripts); args -> one prepared statement.
        self.server.check([step(sql, *args)] if args else [step(sql, multi=True)])
        return ""

    async def fetch(self, sql: str, *args: Any) -> list[dict]:
        return self.server.check([step(sql, *args)])[0]

    async def fetchrow(self, sql: str, *args: Any) -> dict | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def fetchval(self, sql: str, *args: Any, column: int = 0) -> Any:
        row = await self.fetchrow(sql, *args)
        return None if row is None else list(row.values())[column]

    @asynccontextmanager
    async def transaction(self):
        """BEGIN/COMMIT, nested ones as savepoints (asyncpg's semantics); ROLLBACK on error."""
        self._depth += 1
        name = f"pglite_sp_{self._depth}"
        top = self._depth == 1
        await self.execute("BEGIN" if top else f"SAVEPOINT {name}")
        try:
            yield self
        except BaseException:
            await self.execute("ROLLBACK" if top else f"ROLLBACK TO SAVEPOINT {name}")
            raise
        else:
            await self.execute("COMMIT" if top else f"RELEASE SAVEPOINT {name}")
        finally:
            self._depth -= 1

