"""Sending a case through the gateway, over gRPC (raw bytes) or JSON, and naming the outcome as a
gRPC status code ("OK", "INVALID_ARGUMENT", ...).

Streams are short: a client stream sends the one case message and half-closes; a server stream is
read until it ends or stays quiet for ``STREAM_QUIET_S`` (an open subscription is an OK outcome).
A stream's per-batch acknowledgements count too: an ack carrying an error status is that status.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import urllib.parse
from typing import Any

import grpc
from google.api import annotations_pb2
from google.rpc import code_pb2

from .cases import Case, Method, json_bytes

STREAM_QUIET_S = 1.5
CALL_TIMEOUT_S = 30.0

# Codes a JSON caller can only read from the HTTP status: Envoy's own refusals (no gRPC status).
_HTTP = {200: "OK", 400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
         409: "ALREADY_EXISTS", 412: "FAILED_PRECONDITION", 413: "RESOURCE_EXHAUSTED", 414: "RESOURCE_EXHAUSTED",
         431: "RESOURCE_EXHAUSTED", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED", 500: "INTERNAL",
         501: "UNIMPLEMENTED", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


def _ack_code(method: Method, raw: bytes) -> str:
    """The status an acknowledgement of a stream carries ("OK" when it has none)."""
    ack = method.response.FromString(raw)
    if "error" in ack.DESCRIPTOR.fields_by_name and ack.HasField("error") and ack.error.code:
        return code_pb2.Code.Name(ack.error.code)
    return "OK"


async def grpc_call(channel: grpc.aio.Channel, case: Case, metadata) -> tuple[str, str]:
    """(code, details) of one case over gRPC."""
    m = case.method
    try:
        if m.client_streaming:
            call = channel.stream_stream(m.path)(iter([case.wire]), metadata=metadata, timeout=CALL_TIMEOUT_S)
            codes = [_ack_code(m, raw) async for raw in call]
            worst = next((c for c in codes if c != "OK"), "OK")
            return worst, ""
        if m.server_streaming:
            call = channel.unary_stream(m.path)(case.wire, metadata=metadata, timeout=CALL_TIMEOUT_S)
            while True:
                try:
                    raw = await asyncio.wait_for(call.read(), STREAM_QUIET_S)
                except asyncio.TimeoutError:
                    call.cancel()
                    return "OK", "stream open"
                if raw is grpc.aio.EOF:
                    code = await call.code()
                    return code.name, await call.details() or ""
        await channel.unary_unary(m.path)(case.wire, metadata=metadata, timeout=CALL_TIMEOUT_S)
        return "OK", ""
    except grpc.aio.AioRpcError as err:
        return err.code().name, err.details() or ""


def _flatten(value: Any, prefix: str, out: list[tuple[str, str]]) -> bool:
    """Query parameters of a JSON value (False: not expressible as query parameters)."""
    if isinstance(value, dict):
        return all(_flatten(v, f"{prefix}.{k}" if prefix else k, out) for k, v in value.items())
    if isinstance(value, list):
        return all(not isinstance(v, (dict, list)) and _flatten(v, prefix, out) for v in value)
    out.append((prefix, json.dumps(value) if isinstance(value, bool) else str(value)))
    return True


def http_request(case: Case) -> tuple[str, str, bytes | None] | None:
    """(verb, path with query, body) of a JSON case; None when JSON cannot express it."""
    m = case.method
    if case.json is None:
        return None
    rule = m.descriptor.GetOptions().Extensions[annotations_pb2.http]
    kind = rule.WhichOneof("pattern")
    if kind is None:  # every RPC: POST /<package>.<Service>/<Method>, the request as the body
        body = [case.json] if m.client_streaming else case.json
        return "POST", m.path, json_bytes(body, case.patch_json)
    template = getattr(rule, kind)
    fields = dict(case.json)
    path = template
    for name in re.findall(r"{([^}]+)}", template):
        value = fields.pop(name, "")
        if isinstance(value, (dict, list)):
            return None
        path = path.replace("{" + name + "}", urllib.parse.quote(str(value), safe=""))
    body = None
    if rule.body == "*":
        body, fields = json_bytes(fields, case.patch_json), {}
    elif rule.body:
        body = json_bytes(fields.pop(rule.body, {}), case.patch_json)
    query: list[tuple[str, str]] = []
    if not _flatten(fields, "", query):
        return None
    if case.patch_json and body is None:
        return None  # a query string cannot carry the raw bytes
    if query:
        path += "?" + urllib.parse.urlencode(query)
    return kind.upper(), path, body


def json_call(host: str, port: int, case: Case, token: str) -> tuple[str, str] | None:
    """(code, details) of one case as JSON through the transcoder; None when not expressible."""
    request = http_request(case)
    if request is None:
        return None
    verb, path, body = request
    conn = http.client.HTTPConnection(host, port, timeout=STREAM_QUIET_S if case.method.server_streaming
                                      else CALL_TIMEOUT_S)
    try:
        headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
        try:
            conn.request(verb, path, body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
        except TimeoutError:
            if case.method.server_streaming:
                return "OK", "stream open"
            raise
        except (ConnectionResetError, BrokenPipeError) as exc:  # Envoy closed on an oversized body
            return "RESOURCE_EXHAUSTED" if body and len(body) > 1_000_000 else "UNAVAILABLE", repr(exc)
        except http.client.IncompleteRead as exc:  # a response cut short: the caller cannot tell what happened
            return "BROKEN_RESPONSE", repr(exc)[:200]
    finally:
        conn.close()
    try:
        parsed = json.loads(payload)
    except ValueError:
        parsed = None
    if response.status != 200 and isinstance(parsed, dict) and isinstance(parsed.get("code"), int):
        return code_pb2.Code.Name(parsed["code"]), str(parsed.get("message", ""))[:200]
    code = response.headers.get("grpc-status")
    if code is not None and code != "0":
        return code_pb2.Code.Name(int(code)), response.headers.get("grpc-message", "")[:200]
    return _HTTP.get(response.status, f"HTTP_{response.status}"), payload[:200].decode(errors="replace")
