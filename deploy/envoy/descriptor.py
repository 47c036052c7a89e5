"""The descriptor set Envoy's JSON transcoder loads: the contracts, plus one JSON binding per RPC.

    python deploy/envoy/descriptor.py build/banhammer.pb     # rewrites it in place (scripts/gen_protos.sh)

The gateway promises every RPC as JSON at ``POST /<package>.<Service>/<Method>``. The transcoder's
``auto_mapping`` gives that path only to RPCs *without* a ``google.api.http`` rule, so an RPC that
also has a REST path (``GET /api/ts/stats/overview``) was not transcoded there: its JSON went
upstream as is and the gRPC server reset the stream (503). Here every such rule gets the same
binding auto_mapping would have made (``post: "/<package>.<Service>/<Method>" body: "*"``); the
.proto files, and so the generated stubs, stay as written.
"""

from __future__ import annotations

import sys
from pathlib import Path

from google.api import annotations_pb2
from google.protobuf import descriptor_pb2
from google.protobuf.message import DecodeError


def rpc_path(package: str, service: str, method: str) -> str:
    return f"/{package}.{service}/{method}"


def add_rpc_path_bindings(files: descriptor_pb2.FileDescriptorSet) -> list[str]:
    """Give every RPC with an http rule its ``POST /<package>.<Service>/<Method>`` binding; returns
    the paths added (none when run twice)."""
    added = []
    for f in files.file:
        for service in f.service:
            for method in service.method:
                if not method.options.HasExtension(annotations_pb2.http):
                    continue  # auto_mapping serves it at the RPC path already
                rule = method.options.Extensions[annotations_pb2.http]
                path = rpc_path(f.package, service.name, method.name)
                if any(b.post == path for b in (rule, *rule.additional_bindings)):
                    continue
                rule.additional_bindings.add(post=path, body="*")
                added.append(path)
    return added


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python deploy/envoy/descriptor.py DESCRIPTOR_SET", file=sys.stderr)
        return 2
    path = Path(argv[0])
    try:
        files = descriptor_pb2.FileDescriptorSet.FromString(path.read_bytes())
    except (OSError, DecodeError) as exc:
        print(f"descriptor: cannot read {path}: {getattr(exc, 'strerror', None) or exc}", file=sys.stderr)
        return 1
    added = add_rpc_path_bindings(files)
    path.write_bytes(files.SerializeToString())
    print(f"descriptor: {len(added)} RPC-path JSON binding(s) added to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
