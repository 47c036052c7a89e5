// Game admin pages: overview, player investigation, violations, bans, detection rules.
import { useState } from "preact/hooks";
import { BAN, INGEST, Q, RULES, rpc } from "./api.js";
import { ChartBox } from "./chart.jsx";
import { Card, Problem, hour, n, sev, time, useLoad } from "./util.jsx";

export function Overview() {
  // Live: the query service shares these results for a few seconds, so a 10 s refresh is cheap.
  const [stats, e1] = useLoad(() => rpc(Q + "GetStatsOverview", {}), [], 10_000);
  const [load, e2] = useLoad(() => rpc(Q + "GetHourlyLoad", { hours: 24 }), [], 10_000);
  const [top, e3] = useLoad(() => rpc(Q + "GetTopPlayers", { window: "3600s", page_size: 10 }), [], 10_000);
  const byRule = stats?.violations_by_rule || [];
  return (
    <section>
      <h1>Overview</h1>
      <Problem error={e1 || e2 || e3} />
      {stats && (
        <div class="cards">
          <Card id="aps" label="Actions / s" value={n(stats.actions_per_second).toFixed(1)} />
          <Card label="Actions, last hour" value={n(stats.last_hour?.action_count)} />
          <Card label="Players, last hour" value={n(stats.last_hour?.unique_players)} />
          <Card label="Players" value={n(stats.total_players)} />
          <Card label="Banned" value={n(stats.banned_players)} />
        </div>
      )}
      <div class="charts">
        {load && <ChartBox id="chart-hourly" title="Hourly load (24 h)" labels={load.hours?.map((h) => hour(h.hour_start)) || []}
                           series={[{ label: "actions", data: (load.hours || []).map((h) => n(h.action_count)) },
                                    { label: "players", data: (load.hours || []).map((h) => n(h.unique_players)) }]} />}
        {stats && <ChartBox id="chart-rules" type="bar" title="Violations by rule (24 h)" labels={byRule.map((r) => r.rule)}
                            series={[{ label: "violations", data: byRule.map((r) => n(r.count)) }]} />}
        {top && <ChartBox id="chart-top" type="bar" title="Most active players (1 h)"
                          labels={(top.players || []).map((p) => p.player_id)}
                          series={[{ label: "actions", data: (top.players || []).map((p) => n(p.action_count)) }]} />}
      </div>
      {top && (
        <table><thead><tr><th>#</th><th>Player</th><th>Actions</th><th>Last activity</th></tr></thead>
          <tbody>{(top.players || []).map((p) => (
            <tr key={p.player_id}><td>{p.rank}</td><td><a href={`#/players/${encodeURIComponent(p.player_id)}`}>{p.player_id}</a></td>
              <td>{n(p.action_count)}</td><td>{time(p.last_activity)}</td></tr>))}</tbody></table>
      )}
    </section>
  );
}

export function BanForm({ subject: fixed, who, onDone }) {
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    const hours = Number(f.get("hours"));
    const body = { subject: fixed || f.get("subject"), reason: f.get("reason"), admin_source: { admin: who.subject || "console" },
                   ...(f.get("permanent") ? { permanent: true } : { duration: `${Math.round(hours * 3600)}s` }) };
    try { await rpc(BAN + "Ban", body); setError(null); e.target.reset(); onDone && onDone(); } catch (err) { setError(err); }
  };
  return (
    <form class="inline" id="ban-form" onSubmit={submit}>
      {!fixed && <input name="subject" placeholder="player id" required />}
      <input name="reason" placeholder="reason" required />
      <input name="hours" type="number" min="0.02" step="any" value="24" aria-label="hours" /> h
      <label><input type="checkbox" name="permanent" /> permanent</label>
      <button type="submit">Ban</button>
      <Problem error={error} />
    </form>
  );
}

export function Player({ arg, who }) {
  const [id, setId] = useState(arg || "");
  const [data, error, reload] = useLoad(async () => {
    if (!arg) return null;
    const [p, ban, history] = await Promise.all([
      rpc(Q + "GetPlayer", { player_id: arg, recent_violations_limit: 50, activity_window: "86400s" }),
      rpc(BAN + "IsBanned", { subject: arg }),
      rpc(BAN + "GetBanHistory", { subject: arg, page_size: 20 })]);
    return { p, ban, history };
  }, [arg]);
  const go = (e) => { e.preventDefault(); location.hash = `#/players/${encodeURIComponent(id)}`; };
  const s = data?.p.summary || {};
  const unban = async () => { await rpc(BAN + "Unban", { subject: arg, unbanned_by: who.subject, reason: "console" }); reload(); };
  return (
    <section>
      <h1>Player investigation</h1>
      <form class="inline" onSubmit={go}><input value={id} onInput={(e) => setId(e.target.value)} placeholder="player id" />
        <button type="submit">Open</button></form>
      <Problem error={error} />
      {data && (
        <>
          <div class="cards">
            <Card label="Actions" value={n(s.total_actions)} />
            <Card label="Violations" value={n(s.total_violations)} />
            <Card label="Risk" value={n(s.risk_score).toFixed(2)} />
            <Card id="ban-state" label="Ban" value={data.ban.banned ? `banned: ${data.ban.ban.reason}` : "not banned"} />
          </div>
          {data.ban.banned ? <button id="unban" onClick={unban}>Unban</button> : <BanForm subject={arg} who={who} onDone={reload} />}
          <ChartBox id="chart-activity" title="Actions per minute (24 h)" labels={(data.p.activity || []).map((a) => hour(a.minute_start))}
                    series={[{ label: "actions", data: (data.p.activity || []).map((a) => n(a.action_count)) }]} />
          <h2>Violations</h2>
          <ViolationTable rows={data.p.recent_violations || []} />
          <h2>Ban history</h2>
          <table><thead><tr><th>When</th><th>Event</th><th>By</th><th>Reason</th></tr></thead>
            <tbody>{(data.history.events || []).map((ev) => (
              <tr key={ev.event_id}><td>{time(ev.time)}</td><td>{(ev.type || "").replace("BAN_EVENT_TYPE_", "").toLowerCase()}</td>
                <td>{ev.actor}</td><td>{ev.reason || ev.ban?.reason}</td></tr>))}</tbody></table>
        </>
      )}
    </section>
  );
}

function ViolationTable({ rows }) {
  return (
    <table class="violations"><thead><tr><th>When</th><th>Player</th><th>Rule</th><th>Severity</th><th>Evidence</th></tr></thead>
      <tbody>{rows.map((v) => (
        <tr key={v.violation_id}><td>{time(v.detected_at)}</td>
          <td><a href={`#/players/${encodeURIComponent(v.player_id)}`}>{v.player_id}</a></td><td>{v.rule}</td>
          <td class={`sev ${sev(v.severity)}`}>{sev(v.severity)}</td><td><code>{JSON.stringify(v.evidence || {})}</code></td></tr>))}
      </tbody></table>
  );
}

export function Violations() {
  const [rule, setRule] = useState("");
  const [data, error] = useLoad(() => rpc(Q + "ListViolations", { rule, page_size: 100 }), [rule]);
  return (
    <section>
      <h1>Violations</h1>
      <input placeholder="filter by rule" value={rule} onChange={(e) => setRule(e.target.value)} />
      <Problem error={error} />
      {data && <ViolationTable rows={data.violations || []} />}
    </section>
  );
}

export function Bans({ who }) {
  const [data, error, reload] = useLoad(() => rpc(BAN + "ListBans", { page_size: 200 }), []);
  const unban = async (subject) => { await rpc(BAN + "Unban", { subject, unbanned_by: who.subject, reason: "console" }); reload(); };
  return (
    <section>
      <h1>Bans</h1>
      <BanForm who={who} onDone={reload} />
      <Problem error={error} />
      <table id="bans"><thead><tr><th>Player</th><th>Reason</th><th>Source</th><th>Since</th><th>Until</th><th /></tr></thead>
        <tbody>{(data?.bans || []).map((b) => (
          <tr key={b.ban_id} data-subject={b.subject}><td><a href={`#/players/${encodeURIComponent(b.subject)}`}>{b.subject}</a></td>
            <td>{b.reason}</td><td>{b.rule_source ? `rule ${b.rule_source.rule}` : `admin ${b.admin_source?.admin || ""}`}</td>
            <td>{time(b.create_time)}</td><td>{b.permanent ? "permanent" : time(b.expire_time)}</td>
            <td><button onClick={() => unban(b.subject)}>Unban</button></td></tr>))}</tbody></table>
    </section>
  );
}

const TEMPLATE = { name: "new_rule", description: "", enabled: false, severity: "SEVERITY_MEDIUM",
                   action_type: "reward_collection", rate: { window: "60s", max_count: "100" } };

export function Rules() {
  const [data, error, reload] = useLoad(async () => {
    const [rules, changes] = await Promise.all([rpc(INGEST + "ListRules", { include_disabled: true, page_size: 500 }),
                                                rpc(RULES + "ListRuleChanges", { page_size: 20 })]);
    return { rules: rules.rules || [], changes: changes.changes || [], revision: changes.revision };
  }, []);
  const [text, setText] = useState(JSON.stringify(TEMPLATE, null, 2));
  const [hours, setHours] = useState(1);
  const [result, setResult] = useState(null);
  const [problem, setProblem] = useState(null);
  const run = (method, extra) => async () => {
    let rule;
    try { rule = JSON.parse(text); } catch (err) { setProblem(err); return; }
    try {
      const answer = await rpc(RULES + method, { rule, ...extra });
      setProblem(null);
      setResult({ method, answer });
      if (method !== "DryRunRule") reload();
    } catch (err) { setProblem(err); setResult(null); }
  };
  const toggle = async (r) => { await rpc(RULES + "UpdateRule", { rule: { ...r, enabled: !r.enabled } }); reload(); };
  return (
    <section>
      <h1>Detection rules {data && <small id="revision">revision {data.revision}</small>}</h1>
      <Problem error={error} />
      <table id="rules"><thead><tr><th>Name</th><th>Applies to</th><th>Severity</th><th>Condition</th><th>Ban</th><th>Enabled</th><th /></tr></thead>
        <tbody>{(data?.rules || []).map((r) => (
          <tr key={r.name} data-rule={r.name}><td>{r.name}</td><td>{r.action_type || "all"}</td><td>{sev(r.severity)}</td>
            <td><code>{JSON.stringify(r.rate || r.value || r.impossible_value || r.baseline)}</code></td>
            <td>{r.ban ? (r.ban.permanent ? "permanent" : r.ban.duration) : "—"}</td>
            <td><input type="checkbox" class="enabled" checked={!!r.enabled} onChange={() => toggle(r)} /></td>
            <td><button onClick={() => setText(JSON.stringify(r, null, 2))}>Edit</button></td></tr>))}</tbody></table>
      <h2>Edit or create</h2>
      <textarea id="rule-editor" rows="14" value={text} onInput={(e) => setText(e.target.value)} spellcheck={false} />
      <div class="inline">
        <label>Dry run over the last <input id="dry-hours" type="number" min="0.02" max="24" step="any" value={hours}
               onInput={(e) => setHours(e.target.value)} /> h</label>
        <button id="dry-run" onClick={run("DryRunRule", { lookback: `${Math.round(hours * 3600)}s` })}>Dry run</button>
        <button id="create-rule" onClick={run("CreateRule")}>Create</button>
        <button id="update-rule" onClick={run("UpdateRule")}>Save changes</button>
      </div>
      <Problem error={problem} />
      {result?.method === "DryRunRule" && (
        <div id="dry-result">
          <p>Would have flagged <strong id="flagged">{n(result.answer.flagged_count)}</strong> of {n(result.answer.players_scanned)} players.</p>
          <table><thead><tr><th>Player</th><th>Peak</th><th>Limit</th><th>Actions</th><th>First exceeded</th></tr></thead>
            <tbody>{(result.answer.hits || []).map((h) => (
              <tr key={h.player_id}><td>{h.player_id}</td><td>{h.peak}</td><td>{h.limit}</td><td>{n(h.actions)}</td><td>{time(h.first_time)}</td></tr>))}</tbody></table>
        </div>
      )}
      {result && result.method !== "DryRunRule" && <p id="saved">Saved as revision {result.answer.revision}.</p>}
      <h2>Audit trail</h2>
      <table id="audit"><thead><tr><th>Revision</th><th>When</th><th>Who</th><th>Rule</th><th>Change</th></tr></thead>
        <tbody>{(data?.changes || []).map((c) => (
          <tr key={c.revision}><td>{c.revision}</td><td>{time(c.change_time)}</td><td>{c.subject}</td><td>{c.name}</td>
            <td>{(c.kind || "").replace("RULE_CHANGE_KIND_", "").toLowerCase()}
              {c.before && c.before.enabled !== c.after.enabled ? (c.after.enabled ? " (enabled)" : " (disabled)") : ""}</td></tr>))}
        </tbody></table>
    </section>
  );
}
