"""The SDK as a game server gets it: a wheel installed into a fresh virtualenv (no repository on its
path), running the README's example against the real gateway with authentication on."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import grpc

from banhammer.session.v1 import ban_pb2, ban_pb2_grpc
from tests.harness.paths import REPO

CLIENT = REPO / "clients" / "python"


def _run(argv: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    out = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                         env={"PATH": "/usr/bin:/bin", "HOME": str(Path.home())})
    assert out.returncode == 0, f"{argv[:4]} failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}"
    return out


def test_wheel_installs_into_a_fresh_virtualenv_and_its_example_runs(tmp_path, suite, gateway, gateway_tokens):
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-build-isolation", "--no-deps", "-w", str(wheels),
          str(CLIENT)], tmp_path)
    (wheel,) = wheels.glob("banhammer_client-*.whl")
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path)
    python = str(venv / "bin" / "python")
    _run([python, "-m", "pip", "install", "-q", str(wheel)], tmp_path)
    # Nothing of the repository leaks in: the stubs and the client come from the wheel.
    where = _run([python, "-c", "import banhammer.session.v1.ban_pb2 as b, banhammer_client as c; "
                                "print(b.__file__); print(c.__file__)"], tmp_path).stdout.split()
    assert all(str(venv) in p for p in where), where

    player = f"wheel-{uuid.uuid4().hex[:8]}"
    with grpc.insecure_channel(suite.addr) as ch:
        ban_pb2_grpc.BanServiceStub(ch).Ban(ban_pb2.BanRequest(
            subject="player-0", reason="example", permanent=True,
            admin_source=ban_pb2.AdminSource(admin="gm:wheel")), timeout=10)
    out = _run([python, str(CLIENT / "examples" / "game_server.py"), "--target", gateway.addr,
                f"--token={gateway_tokens['service']}", "--producer", f"test/{player}"], tmp_path).stdout
    assert "admitted 4 of 5 players" in out and "actions stored: 4, unacknowledged: 0" in out, out
    assert "player-0 banned (local answer): True" in out, out
