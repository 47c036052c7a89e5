// Building operator pages: buildings and tenants, a building's dashboard, alerts.
import { E, rpc } from "./api.js";
import { ChartBox } from "./chart.jsx";
import { Card, Problem, hour, n, sev, time, useLoad } from "./util.jsx";

const B = E + "BuildingService/";
const iso = (ms) => new Date(ms).toISOString();
const day = (ms) => iso(ms).slice(0, 10);

export function Buildings() {
  const [data, error] = useLoad(() => rpc(B + "ListBuildings", { page_size: 200 }), []);
  return (
    <section>
      <h1>Buildings</h1>
      <Problem error={error} />
      <table id="buildings"><thead><tr><th>Name</th><th>Address</th><th>Type</th></tr></thead>
        <tbody>{(data?.buildings || []).map((b) => (
          <tr key={b.building_id}><td><a href={`#/buildings/${b.building_id}`}>{b.name}</a></td><td>{b.address}</td>
            <td>{b.building_type}</td></tr>))}</tbody></table>
    </section>
  );
}

// Sensor series of the last 24 h, by sensor type and by floor/room.
function seriesOf(answer) {
  const byType = {};
  for (const s of answer.series || []) {
    const t = s.tags.sensor_type;
    (byType[t] = byType[t] || []).push(s);
  }
  return Object.entries(byType).map(([type, list]) => {
    const labels = [...new Set(list.flatMap((s) => (s.points || []).map((p) => p.time)))].sort();
    return {
      type, labels: labels.map(hour),
      series: list.map((s) => {
        const at = Object.fromEntries((s.points || []).map((p) => [p.time, p.value]));
        return { label: `floor ${s.tags.floor} · ${s.tags.room}`, data: labels.map((l) => at[l] ?? null) };
      }),
    };
  });
}

export function Building({ arg }) {
  const id = arg;
  const now = Date.now();
  const [data, error, reload] = useLoad(async () => {
    const calls = [
      rpc(E + "DashboardService/GetDashboard", { building_id: id }),
      rpc(E + "SensorService/QueryReadings", {
        time_range: { start_time: iso(now - 24 * 3600e3) }, window: "900s", aggregate: "AGGREGATE_MEAN",
        group_by: ["SENSOR_TAG_FLOOR", "SENSOR_TAG_ROOM"], filter: { building_ids: [id] } }),
      rpc(E + "EnergyUsageService/GetDailyUsage", { building_id: id, start_date: day(now - 30 * 86400e3), end_date: day(now) }),
      rpc(E + "EnergyUsageService/GetMonthlyUsage", { building_id: id, start_month: day(now - 365 * 86400e3).slice(0, 7),
                                                     end_month: day(now).slice(0, 7) }),
      rpc(B + "ListTenants", { building_id: id, page_size: 100 }),
      rpc(E + "AlertService/ListAlerts", { building_id: id, page_size: 100 }),
      rpc(E + "ForecastService/GetForecast", { building_id: id }).catch(() => null),  // needs 48 h of history
      rpc(E + "SensorService/QueryReadings", {  // hourly mean kW = kWh per hour, beside the forecast
        time_range: { start_time: iso(now - 24 * 3600e3) }, window: "3600s", aggregate: "AGGREGATE_MEAN",
        filter: { building_ids: [id], sensor_types: ["power"] } }),
    ];
    const [dash, readings, daily, monthly, tenants, alerts, forecast, hourly] = await Promise.all(calls);
    return { dash, readings, daily, monthly, tenants, alerts, forecast, hourly };
  }, [id]);
  if (error) return <Problem error={error} />;
  if (!data) return <p>Loading…</p>;
  const b = data.dash.building || {};
  const csv = `/console/api/export.csv?building_id=${encodeURIComponent(id)}&start=${encodeURIComponent(iso(now - 24 * 3600e3))}`;
  return (
    <section>
      <h1>{b.name} <small>{b.address}</small></h1>
      <div class="cards">
        <Card label="Tenants" value={n(data.dash.tenant_count)} />
        <Card label="Active alerts" value={(data.dash.active_alerts || []).length} />
        <Card label="Next 24 h (forecast)" value={data.dash.forecast ? `${n(data.dash.forecast.next_24h_kwh).toFixed(0)} kWh` : "—"} />
      </div>
      <a id="csv" href={csv} download>Download readings (CSV, 24 h)</a>
      <div class="charts">
        {seriesOf(data.readings).map((s) => (
          <ChartBox key={s.type} id={`chart-sensor-${s.type}`} title={`${s.type} (24 h, 15 min means)`} labels={s.labels} series={s.series} />))}
        <ChartBox id="chart-daily" type="bar" title="Daily usage (kWh, 30 days)" labels={(data.daily.days || []).map((d) => d.date)}
                  series={[{ label: "kWh", data: (data.daily.days || []).map((d) => n(d.kwh)) }]} />
        <ChartBox id="chart-monthly" type="bar" title="Monthly usage (kWh)" labels={(data.monthly.months || []).map((m) => m.month)}
                  series={[{ label: "kWh", data: (data.monthly.months || []).map((m) => n(m.kwh)) }]} />
        <ConsumptionChart hourly={data.hourly} forecast={data.forecast} />
      </div>
      <h2>Alerts</h2>
      <AlertTable alerts={data.alerts.alerts || []} onChange={reload} />
      <h2>Tenants</h2>
      <table><thead><tr><th>Name</th><th>Contact</th></tr></thead>
        <tbody>{(data.tenants.tenants || []).map((t) => <tr key={t.tenant_id}><td>{t.name}</td><td>{t.contact_info}</td></tr>)}</tbody></table>
    </section>
  );
}

// Actual hourly consumption of the last 24 h, then the forecast's next hours, on one time axis.
function ConsumptionChart({ hourly, forecast }) {
  const actual = (hourly.series || []).flatMap((s) => s.points || []);
  const ahead = forecast?.points || [];
  const labels = [...actual.map((p) => p.time), ...ahead.map((p) => p.hour_start)];
  return (
    <ChartBox id="chart-consumption" title={forecast ? "Consumption (kWh per hour): actual and forecast" : "Consumption (kWh per hour)"}
              labels={labels.map(hour)}
              series={[{ label: "actual", data: [...actual.map((p) => n(p.value)), ...ahead.map(() => null)] },
                       ...(forecast ? [{ label: "forecast", data: [...actual.map(() => null), ...ahead.map((p) => n(p.kwh))],
                                         dash: [4, 4] }] : [])]} />
  );
}

function AlertTable({ alerts, onChange }) {
  const ack = async (a) => { await rpc(E + "AlertService/AcknowledgeAlert", { alert_id: a.alert_id, note: "seen in the console" }); onChange(); };
  return (
    <table id="alerts"><thead><tr><th>Fired</th><th>Where</th><th>Severity</th><th>Message</th><th>State</th><th /></tr></thead>
      <tbody>{alerts.map((a) => (
        <tr key={a.alert_id} data-alert={a.alert_id}><td>{time(a.fired_at)}</td>
          <td>{a.scope?.building_id} {a.scope?.floor} {a.scope?.room}</td><td>{sev(a.severity)}</td><td>{a.message}</td>
          <td class="state">{(a.state || "").replace("ALERT_STATE_", "").toLowerCase()}</td>
          <td>{a.state === "ALERT_STATE_FIRING" && <button class="ack" onClick={() => ack(a)}>Acknowledge</button>}</td></tr>))}
      </tbody></table>
  );
}

export function Alerts() {
  const [data, error, reload] = useLoad(() => rpc(E + "AlertService/ListAlerts", { page_size: 200 }), []);
  return (
    <section>
      <h1>Alerts</h1>
      <Problem error={error} />
      <AlertTable alerts={data?.alerts || []} onChange={reload} />
    </section>
  );
}
