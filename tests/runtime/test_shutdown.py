"""SIGTERM: health goes NOT_SERVING, in-flight RPCs finish, every acknowledged request was done."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from google.protobuf import wrappers_pb2

from .echo_service import SERVICE

SV = wrappers_pb2.StringValue
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def echo_process(tmp_path):
    port = _free_port()
    journal = tmp_path / "journal"
    env = {**os.environ, "GRPC_HOST": "127.0.0.1", "GRPC_PORT": str(port), "SHUTDOWN_GRACE_SECONDS": "3",
           "ECHO_JOURNAL": str(journal), "PYTHONPATH": f"{ROOT}:{ROOT / 'gen'}"}
    with open(tmp_path / "echo.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "tests.runtime.echo_service"], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    yield proc, f"127.0.0.1:{port}", journal
    if proc.poll() is None:
        proc.kill()
    proc.wait()


async def _until_serving(channel, timeout=20.0):
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    stub = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if (await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)).status == 1:
                return
        except grpc.aio.AioRpcError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError("echo service never became SERVING")


async def test_sigterm_completes_inflight_unary_calls(echo_process):
    proc, addr, journal = echo_process
    async with grpc.aio.insecure_channel(addr) as channel:
        await _until_serving(channel)
        echo = channel.unary_unary(f"/{SERVICE}/Echo", request_serializer=SV.SerializeToString,
                                   response_deserializer=SV.FromString)
        calls = [asyncio.ensure_future(echo(SV(value=f"sleep:1500:{i}"), timeout=10)) for i in range(20)]
        deadline = time.monotonic() + 10
        while (await echo(SV(value="inflight"))).value != "20":  # all 20 are inside the handler
            assert time.monotonic() < deadline, "calls never reached the server"
            await asyncio.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        results = await asyncio.gather(*calls, return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    assert failures == []
    assert sorted(r.value for r in results) == sorted(f"sleep:1500:{i}" for i in range(20))
    assert proc.wait(timeout=15) == 0
    assert sorted(journal.read_text().split()) == sorted(f"sleep:1500:{i}" for i in range(20))


async def test_sigterm_during_stream_loses_no_acknowledged_request(echo_process):
    proc, addr, journal = echo_process
    acked: list[str] = []
    async with grpc.aio.insecure_channel(addr) as channel:
        await _until_serving(channel)
        stream = channel.stream_stream(f"/{SERVICE}/EchoStream", request_serializer=SV.SerializeToString,
                                       response_deserializer=SV.FromString)
        call = stream()
        try:
            for i in range(400):
                await call.write(SV(value=f"sleep:5:{i}"))
                acked.append((await call.read()).value)
                if i == 50:
                    proc.send_signal(signal.SIGTERM)
            await call.done_writing()
        except grpc.aio.AioRpcError:
            # Cut off at the end of the grace period: a retryable status, never a silent drop. (A
            # write racing the end reports the client library's own INTERNAL "Internal error from
            # Core"; the call's status is what the server sent.)
            assert await call.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
    assert len(acked) > 50
    assert proc.wait(timeout=15) == 0
    written = journal.read_text().split()
    assert set(acked) <= set(written)
    assert acked == [f"sleep:5:{i}" for i in range(len(acked))]
