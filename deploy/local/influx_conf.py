"""influxd 1.x configuration with every listener remapped (shared by the local stack and the tests)."""

from pathlib import Path

INFLUX_CONF = """\
reporting-disabled = true
# RPC service (backup/restore); its default 8088 is remapped like every other listener.
bind-address = "127.0.0.1:{rpc_port}"

[meta]
  dir = "{root}/meta"

[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:{http_port}"
  auth-enabled = false
  log-enabled = false

[subscriber]
  enabled = false
"""


def influx_config(root: Path, http_port: int, rpc_port: int) -> str:
    """An influxd config keeping all data under ``root`` and listening only on 127.0.0.1."""
    return INFLUX_CONF.format(root=root, http_port=http_port, rpc_port=rpc_port)
