// Small shared pieces: loading a call's answer, errors, formatting.
import { useEffect, useState } from "preact/hooks";

// Runs `load` (an async function) when `deps` change, and every `everyMs` if given (live pages);
// [data, error, reload]. A failed refresh keeps the last data beside the error.
export function useLoad(load, deps, everyMs = 0) {
  const [state, setState] = useState({ data: null, error: null });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    load().then((data) => live && setState({ data, error: null }),
                (error) => live && setState((s) => ({ data: s.data, error })));
    const timer = everyMs ? setTimeout(() => live && setTick((t) => t + 1), everyMs) : null;
    return () => { live = false; clearTimeout(timer); };
  }, [...deps, tick]);
  return [state.data, state.error, () => setTick((t) => t + 1)];
}

export function Problem({ error }) {
  if (!error) return null;
  const fields = error.fields ? Object.entries(error.fields) : [];
  return (
    <div class="problem" role="alert">
      <strong>{error.message}</strong>
      {fields.length > 0 && <ul>{fields.map(([f, d]) => <li key={f}><code>{f}</code>: {d}</li>)}</ul>}
    </div>
  );
}

export const n = (v) => Number(v || 0);
export const time = (t) => (t ? new Date(t).toLocaleString() : "—");
export const hour = (t) => new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
export const sev = (s) => (s || "").replace("SEVERITY_", "").toLowerCase();

export function Card({ label, value, id }) {
  return <div class="card" id={id}><div class="label">{label}</div><div class="value">{value}</div></div>;
}
