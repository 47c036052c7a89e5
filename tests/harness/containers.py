"""Testcontainers (real TimescaleDB / InfluxDB 2 images) where a Docker engine is reachable."""

from __future__ import annotations

import functools


@functools.cache
def docker_unavailable_reason() -> str | None:
    """None when a Docker engine answers; otherwise why not (for pytest.skip)."""
    try:
        import docker

        client = docker.from_env(timeout=3)
        client.ping()
        client.close()
    except Exception as exc:  # noqa: BLE001 - any failure means "no engine", with its reason
        return f"no Docker engine reachable: {type(exc).__name__}: {exc}"
    return None
