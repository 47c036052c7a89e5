#!/usr/bin/env bash
# Generate Python gRPC stubs (+ mypy stubs) and the Envoy descriptor set from protos/.
#
#   scripts/gen_protos.sh            # uses $PYTHON, else .venv/bin/python
#
# Outputs (all git-ignored, recreated on every run):
#   gen/banhammer/**           *_pb2.py, *_pb2_grpc.py, *.pyi, __init__.py
#   build/proto-deps/google/   google/api/{annotations,http}.proto, google/rpc/{status,error_details}.proto
#                              copied from the googleapis-common-protos wheel so buf can resolve them
#   build/banhammer.pb         FileDescriptorSet with imports + source info (Envoy grpc_json_transcoder),
#                              with the gateway's JSON bindings (deploy/envoy/descriptor.py)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PY="${PYTHON:-$ROOT/.venv/bin/python}"
if ! "$PY" -c 'import grpc_tools, mypy_protobuf' 2>/dev/null; then
  echo "gen_protos: $PY lacks grpcio-tools or mypy-protobuf (pip install -e '.[dev]')" >&2
  exit 1
fi
PY_BIN_DIR="$(dirname "$PY")"

# (1) Include dirs: googleapis-common-protos' site-packages root and grpc_tools' bundled WKTs.
GOOGLEAPIS_ROOT="$("$PY" - <<'PYEOF'
import os, sys
import google.api
for p in google.api.__path__:
    if os.path.isfile(os.path.join(p, "annotations.proto")):
        print(os.path.dirname(os.path.dirname(p)))
        break
else:
    sys.exit("google/api/annotations.proto not found (googleapis-common-protos missing?)")
PYEOF
)"
GRPC_TOOLS_INCLUDE="$("$PY" -c 'import grpc_tools, os; print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))')"

# (2) Third-party protos used by our files, copied (never committed) for protoc and buf.
DEPS="$ROOT/build/proto-deps"
rm -rf "$DEPS"
mkdir -p "$DEPS/google/api" "$DEPS/google/rpc"
for f in google/api/annotations.proto google/api/http.proto google/rpc/status.proto google/rpc/error_details.proto; do
  cp "$GOOGLEAPIS_ROOT/$f" "$DEPS/$f"
done

# Plugins: prefer the ones next to the interpreter (the venv's bin), else PATH.
plugin_args=()
for name in protoc-gen-mypy protoc-gen-mypy_grpc; do
  if [[ -x "$PY_BIN_DIR/$name" ]]; then
    plugin_args+=("--plugin=$name=$PY_BIN_DIR/$name")
  elif ! command -v "$name" >/dev/null; then
    echo "gen_protos: $name not found (mypy-protobuf)" >&2
    exit 1
  fi
done

mapfile -t PROTOS < <(cd protos && find banhammer -name '*.proto' | LC_ALL=C sort)
if [[ ${#PROTOS[@]} -eq 0 ]]; then
  echo "gen_protos: no protos under protos/banhammer" >&2
  exit 1
fi

# (3) Python + gRPC + mypy stubs. Idempotent: our generated tree is removed first.
rm -rf gen/banhammer
mkdir -p gen build
"$PY" -m grpc_tools.protoc \
  -Iprotos -I"$DEPS" -I"$GRPC_TOOLS_INCLUDE" \
  "${plugin_args[@]}" \
  --python_out=gen --grpc_python_out=gen \
  --mypy_out=quiet:gen --mypy_grpc_out=quiet:gen \
  "${PROTOS[@]}"

# The gateway's side of Envoy's ext_authz / rate limit APIs (wire-compatible subset, ours).
rm -rf gen/envoy_api
"$PY" -m grpc_tools.protoc \
  -Ideploy/envoy/api -I"$DEPS" -I"$GRPC_TOOLS_INCLUDE" \
  "${plugin_args[@]}" \
  --python_out=gen --grpc_python_out=gen \
  --mypy_out=quiet:gen --mypy_grpc_out=quiet:gen \
  envoy_api/ext_authz.proto

# Every generated directory becomes a regular package.
find gen/banhammer gen/envoy_api -type d -print0 | while IFS= read -r -d '' d; do
  [[ -f "$d/__init__.py" ]] || : > "$d/__init__.py"
done

# (4) Descriptor set for Envoy's gRPC-JSON transcoder (includes google/* imports). With
# google/rpc/error_details.proto, which no contract imports: the transcoder needs its types to
# print an error's details (BadRequest, RetryInfo) in the JSON body of a failed call.
"$PY" -m grpc_tools.protoc \
  -Iprotos -I"$DEPS" -I"$GRPC_TOOLS_INCLUDE" \
  --include_imports --include_source_info \
  --descriptor_set_out=build/banhammer.pb \
  "${PROTOS[@]}" google/rpc/error_details.proto
# Every RPC also as JSON at POST /<package>.<Service>/<Method>, REST-annotated ones included.
"$PY" deploy/envoy/descriptor.py build/banhammer.pb

echo "gen_protos: ${#PROTOS[@]} files -> gen/banhammer, build/banhammer.pb"
