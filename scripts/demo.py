"""Drive realistic game and sensor traffic through the gateway and say what happened.

    python scripts/demo.py [--gateway localhost:8000] [--players 20] [--actions 200]

Runs against the local stack (`make dev`). Every call goes through Envoy: gRPC stubs for game
servers and sensors, and the seed's JSON calls (`POST /api/ts/action`, `GET /api/ts/stats/overview`).
RPCs whose logic is not written yet answer UNIMPLEMENTED; the demo reports them and carries on.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "gen"), str(REPO)]

import grpc  # noqa: E402
from google.protobuf.json_format import MessageToDict  # noqa: E402
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402

from banhammer.common.v1 import common_pb2  # noqa: E402
from banhammer.energy.v1 import building_pb2, building_pb2_grpc, sensor_pb2, sensor_pb2_grpc  # noqa: E402
from banhammer.ingest.v1 import ingest_pb2, ingest_pb2_grpc  # noqa: E402
from banhammer.query.v1 import query_pb2, query_pb2_grpc  # noqa: E402
from banhammer.session.v1 import ban_pb2, ban_pb2_grpc  # noqa: E402
from services.runtime import cli  # noqa: E402

ACTION_TYPES = {"reward_collection": (50, 150), "kill": (1, 1), "item_pickup": (1, 5), "trade": (10, 500)}
HEALTH = {"ingest": "banhammer.ingest.v1.IngestService", "query": "banhammer.query.v1.QueryService",
          "session": "banhammer.session.v1.SessionService", "energy": "banhammer.energy.v1.BuildingService"}


class Tally:
    """Outcome and latency of every call, by call name."""

    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.outcomes: dict[str, Counter] = defaultdict(Counter)
        self.examples: dict[tuple[str, str], str] = {}

    def grpc(self, name: str, fn, *args, **kwargs):
        start = time.perf_counter()
        try:
            reply = fn(*args, timeout=10, **kwargs)
            outcome = "OK"
        except grpc.RpcError as exc:
            reply, outcome = None, exc.code().name
            self.examples.setdefault((name, outcome), exc.details() or "")
        self.latencies[name].append(time.perf_counter() - start)
        self.outcomes[name][outcome] += 1
        return reply

    def http(self, name: str, url: str, body: dict | None = None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method="POST" if data else "GET",
                                         headers={"content-type": "application/json"})
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                reply, outcome = json.loads(resp.read() or b"{}"), f"HTTP {resp.status}"
        except urllib.error.HTTPError as exc:
            text = exc.read().decode(errors="replace")
            reply, outcome = None, f"HTTP {exc.code}"
            self.examples.setdefault((name, outcome), text[:160])
        except (urllib.error.URLError, OSError) as exc:
            reply, outcome = None, "unreachable"
            self.examples.setdefault((name, outcome), str(exc))
        self.latencies[name].append(time.perf_counter() - start)
        self.outcomes[name][outcome] += 1
        return reply

    def report(self) -> None:
        print(f"\n{'call':<34} {'calls':>5} {'p50 ms':>8} {'p95 ms':>8}  outcomes")
        for name, lat in self.latencies.items():
            ms = sorted(x * 1000 for x in lat)
            p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
            outcomes = ", ".join(f"{k} x{v}" for k, v in self.outcomes[name].most_common())
            print(f"{name:<34} {len(ms):>5} {statistics.median(ms):>8.1f} {p95:>8.1f}  {outcomes}")
        unimplemented = sorted({n for (n, o) in self.examples if o in ("UNIMPLEMENTED", "HTTP 501")})
        if unimplemented:
            print(f"\nnot implemented yet (UNIMPLEMENTED): {', '.join(unimplemented)}")
        errors = {k: v for k, v in self.examples.items() if k[1] not in ("UNIMPLEMENTED", "HTTP 501")}
        if errors:
            print("\nerrors (first of each kind):")
            for (name, outcome), detail in errors.items():
                print(f"  {name}: {outcome}: {detail}")


def check_gateway(channel: grpc.Channel) -> bool:
    stub = health_pb2_grpc.HealthStub(channel)
    print("health through the gateway:")
    healthy = True
    for target, service in HEALTH.items():
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=3,
                               metadata=[("x-banhammer-service", target)])
            state = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        except grpc.RpcError as exc:
            state = f"{exc.code().name} ({exc.details()})"
        healthy &= state == "SERVING"
        print(f"  {target:<8} {state}")
    return healthy


def game_traffic(tally: Tally, channel: grpc.Channel, base_url: str, players: int, actions: int) -> None:
    ingest = ingest_pb2_grpc.IngestServiceStub(channel)
    bans = ban_pb2_grpc.BanServiceStub(channel)
    rng = random.Random(42)
    ids = [f"player_{i:04d}" for i in range(players)]

    def action(player: str) -> common_pb2.PlayerAction:
        kind = rng.choice(list(ACTION_TYPES))
        low, high = ACTION_TYPES[kind]
        return common_pb2.PlayerAction(player_id=player, action_type=kind, value=float(rng.randint(low, high)))

    for _ in range(actions):
        tally.grpc("ingest.RecordAction (gRPC)", ingest.RecordAction,
                   ingest_pb2.RecordActionRequest(action=action(rng.choice(ids))))
    batch = [action(rng.choice(ids)) for _ in range(100)]
    tally.grpc("ingest.RecordActions (gRPC, 100)", ingest.RecordActions, ingest_pb2.RecordActionsRequest(actions=batch))
    # A suspicious player: far more rewards than anyone else.
    for _ in range(30):
        tally.grpc("ingest.RecordAction (gRPC)", ingest.RecordAction, ingest_pb2.RecordActionRequest(
            action=common_pb2.PlayerAction(player_id="player_cheater", action_type="reward_collection", value=9999.0)))
    seed_body = {"player_id": "test_player_1", "action_type": "reward_collection", "value": 100.0}
    for _ in range(20):
        tally.http("POST /api/ts/action (JSON)", f"{base_url}/api/ts/action", seed_body)
    tally.http("POST /api/action (JSON, legacy)", f"{base_url}/api/action", seed_body)
    for player in ("player_cheater", ids[0]):
        tally.grpc("session.IsBanned (gRPC)", bans.IsBanned, ban_pb2.IsBannedRequest(subject=player))


def sensor_traffic(tally: Tally, channel: grpc.Channel) -> None:
    buildings = building_pb2_grpc.BuildingServiceStub(channel)
    sensors = sensor_pb2_grpc.SensorServiceStub(channel)
    created = tally.grpc("energy.CreateBuilding (gRPC)", buildings.CreateBuilding, building_pb2.CreateBuildingRequest(
        building=building_pb2.Building(name="Demo Tower", address="1 Demo Street")))
    building_id = created.building.building_id if created else 1
    rng = random.Random(7)
    for minute in range(10):
        readings = [
            sensor_pb2.SensorReading(building_id=building_id, sensor_type=kind, floor=str(floor), room=f"{floor}0{room}",
                                     value=round(base + rng.uniform(-1, 1), 2), unit=unit)
            for floor in (1, 2) for room in (1, 2)
            for kind, base, unit in (("temperature", 22.5, "celsius"), ("humidity", 45.0, "percent"),
                                     ("power", 3.2, "kW"))
        ]
        tally.grpc("energy.WriteReadings (gRPC, 12)", sensors.WriteReadings,
                   sensor_pb2.WriteReadingsRequest(readings=readings))


def stats(tally: Tally, channel: grpc.Channel, base_url: str) -> None:
    query = query_pb2_grpc.QueryServiceStub(channel)
    reply = tally.grpc("query.GetStatsOverview (gRPC)", query.GetStatsOverview, query_pb2.GetStatsOverviewRequest())
    tally.grpc("query.GetTopPlayers (gRPC)", query.GetTopPlayers, query_pb2.GetTopPlayersRequest(page_size=5))
    overview = tally.http("GET /api/ts/stats/overview (JSON)", f"{base_url}/api/ts/stats/overview")
    shown = overview if overview is not None else (MessageToDict(reply) if reply is not None else None)
    if shown is not None:
        print("\nstats overview (GET /api/ts/stats/overview):")
        print(json.dumps(shown, indent=2)[:2000])


def main(argv: list[str] | None = None) -> int:
    parser = cli.CommandParser(prog="python scripts/demo.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--gateway", default="localhost:8000", help="Envoy host:port (gRPC and JSON)")
    parser.add_argument("--players", type=int, default=20)
    parser.add_argument("--actions", type=int, default=200)
    args = parser.parse_args(argv)
    base_url = f"http://{args.gateway}"
    tally = Tally()
    with grpc.insecure_channel(args.gateway) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=5)
        except grpc.FutureTimeoutError:
            print(f"gateway {args.gateway} unreachable: start the stack with `make dev`", file=sys.stderr)
            return 2
        if not check_gateway(channel):
            print("(some services are not SERVING; carrying on to show what happens)")
        started = time.perf_counter()
        game_traffic(tally, channel, base_url, args.players, args.actions)
        sensor_traffic(tally, channel)
        stats(tally, channel, base_url)
    tally.report()
    total = sum(sum(c.values()) for c in tally.outcomes.values())
    print(f"\n{total} calls in {time.perf_counter() - started:.1f}s through {args.gateway}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, "python scripts/demo.py"))
