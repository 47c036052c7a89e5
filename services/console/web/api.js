// The console's JSON API: every call is the signed-in caller's (cookie), state changes carry the
// CSRF cookie back as a header (double submit).

function csrf() {
  const m = document.cookie.match(/(?:^|;\s*)bh_csrf=([^;]*)/);
  return m ? decodeURIComponent(m[1]) : "";
}

export class ApiError extends Error {
  constructor(status, body) {
    super(body.error || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
  // Field violations of an INVALID_ARGUMENT answer: {field: description}.
  get fields() {
    const out = {};
    for (const d of this.body.details || []) {
      for (const v of d.field_violations || []) out[v.field] = v.description;
    }
    return out;
  }
}

async function send(path, body) {
  const res = await fetch(path, {
    method: "POST",
    headers: { "content-type": "application/json", "x-csrf-token": csrf() },
    body: JSON.stringify(body || {}),
    credentials: "same-origin",
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

export const rpc = (method, body) => send(`/console/api/rpc/${method}`, body);
export const login = (body) => send("/console/api/login", body);
export const logout = () => send("/console/api/logout", {});

export async function me() {
  const res = await fetch("/console/api/me", { credentials: "same-origin" });
  return res.ok ? res.json() : null;
}

export const Q = "banhammer.query.v1.QueryService/";
export const BAN = "banhammer.session.v1.BanService/";
export const INGEST = "banhammer.ingest.v1.IngestService/";
export const RULES = "banhammer.ingest.v1.RuleService/";
export const E = "banhammer.energy.v1.";
