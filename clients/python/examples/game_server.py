"""A minimal game server on banhammer-client: refuse banned players at login, report their actions.

    python game_server.py --target localhost:8000 --token="$TOKEN"
    python game_server.py --target localhost:8443 --tls .local/tls --cert game-dev
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from banhammer.common.v1 import common_pb2
from banhammer_client import Client


async def main(args: argparse.Namespace) -> int:
    tls = {}
    if args.tls:
        d = Path(args.tls)
        tls = {"ca": d / "ca.pem", "cert": d / f"{args.cert}.pem", "key": d / f"{args.cert}-key.pem",
               "server_name": "localhost"}
    async with await Client.connect(args.target, token=args.token, **tls) as client:
        players = [f"player-{i}" for i in range(5)]
        banned = await client.check_bans(players)  # one CheckBans; later checks are answered locally
        admitted = [p for p in players if not banned[p].active(0)]
        print(f"admitted {len(admitted)} of {len(players)} players")
        stream = client.action_stream(producer_id=args.producer)
        # A tick's actions in one call (send() takes one at a time).
        await stream.send_many([common_pb2.PlayerAction(player_id=player, action_type="login", value=1.0)
                                for player in admitted])
        report = await stream.flush(timeout=10)
        print(f"actions stored: {report.accepted}, unacknowledged: {report.unacknowledged}")
        print(f"player-0 banned (local answer): {await client.is_banned('player-0')}")
        return 0 if report.unacknowledged == 0 else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", default="localhost:8000")
    parser.add_argument("--token", help="a session token with role service (GATEWAY_AUTH=on); pass it as --token=TOKEN, since a token may begin with '-'")
    parser.add_argument("--tls", help="directory with ca.pem and the client certificate (mTLS port)")
    parser.add_argument("--cert", default="game-dev", help="client certificate name in --tls (NAME.pem, NAME-key.pem)")
    parser.add_argument("--producer", default="example/game-server-1", help="producer id of the action stream")
    sys.exit(asyncio.run(main(parser.parse_args())))
