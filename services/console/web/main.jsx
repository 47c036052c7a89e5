// The console's shell: sign-in, navigation by role, hash routes.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import * as api from "./api.js";
import { Problem } from "./util.jsx";
import { Bans, Overview, Player, Rules, Violations } from "./game.jsx";
import { Alerts, Building, Buildings } from "./energy.jsx";

const GAME = [["overview", "Overview"], ["players", "Players"], ["violations", "Violations"], ["bans", "Bans"],
              ["rules", "Rules"]];
const ENERGY = [["buildings", "Buildings"], ["alerts", "Alerts"]];

function useHash() {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
}

function SignIn({ onIn }) {
  const [mode, setMode] = useState("password");
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    const body = mode === "token" ? { token: f.get("token") }
                                  : { username: f.get("username"), password: f.get("password") };
    try { onIn(await api.login(body)); } catch (err) { setError(err); }
  };
  return (
    <main class="signin">
      <h1>BanHammer console</h1>
      <div class="tabs">
        <button class={mode === "password" ? "on" : ""} onClick={() => setMode("password")}>Energy user</button>
        <button class={mode === "token" ? "on" : ""} id="mode-token" onClick={() => setMode("token")}>Admin session</button>
      </div>
      <form onSubmit={submit} id="signin">
        {mode === "token"
          ? <label>Session token <input name="token" type="password" autocomplete="off" required /></label>
          : <>
              <label>Username <input name="username" autocomplete="username" required /></label>
              <label>Password <input name="password" type="password" autocomplete="current-password" required /></label>
            </>}
        <button type="submit">Sign in</button>
      </form>
      <Problem error={error} />
    </main>
  );
}

function Refused() {
  return <p class="problem" id="refused" role="alert">Your role may not open this page.</p>;
}

function App() {
  const [who, setWho] = useState(undefined);
  const route = useHash();
  useEffect(() => { api.me().then(setWho); }, []);
  if (who === undefined) return <p>Loading…</p>;
  if (!who) return <SignIn onIn={setWho} />;
  const can = (m) => who.allowed.includes("/" + m);
  const game = can(api.Q + "GetStatsOverview");
  const energy = can(api.E + "DashboardService/GetDashboard");
  const [page, arg] = route;
  const home = game ? "overview" : "buildings";
  const gamePages = { overview: Overview, players: Player, violations: Violations, bans: Bans, rules: Rules };
  const energyPages = { buildings: arg ? Building : Buildings, alerts: Alerts };
  let body;
  if (gamePages[page || home]) body = game ? h(gamePages[page || home], { arg, who }) : <Refused />;
  else if (energyPages[page || home]) body = energy ? h(energyPages[page || home], { arg, who }) : <Refused />;
  else body = <p>No such page.</p>;
  const out = async () => { await api.logout(); setWho(null); };
  return (
    <>
      <header>
        <strong>BanHammer</strong>
        <nav>
          {game && GAME.map(([p, t]) => <a key={p} href={`#/${p}`} class={page === p ? "on" : ""}>{t}</a>)}
          {energy && ENERGY.map(([p, t]) => <a key={p} href={`#/${p}`} class={page === p ? "on" : ""}>{t}</a>)}
        </nav>
        <span class="who" id="who">{who.subject} ({who.role})</span>
        <button onClick={out}>Sign out</button>
      </header>
      <main>{body}</main>
    </>
  );
}

function h(Component, props) {
  return <Component {...props} />;
}

render(<App />, document.getElementById("app"));
