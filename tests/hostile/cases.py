"""Hostile requests, generated from the contracts: every field of every RPC's request gets the
values its type allows on the wire that a service must refuse cleanly (or accept).

A case is the RPC's baseline request (a valid one, from ``baselines.py``) with one field replaced.
Message fields are followed into their sub-messages (the first element of a repeated one), so a
hostile value reaches the deepest layer a valid request reaches. Each case carries its gRPC bytes
and, where JSON can express it, its JSON body: out-of-range timestamps and durations exist only on
the wire, invalid UTF-8 is patched into both after serialising (protobuf refuses to build it).
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import descriptor_pb2, json_format, message_factory, symbol_database
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message

from tests.harness.paths import DESCRIPTOR

# A placeholder serialised as UTF-8, then overwritten byte for byte with invalid UTF-8.
MARKER = "\ue000bad-utf8\ue000"
_MARKER_BYTES = MARKER.encode()
_INVALID = b"\xff\xfe" + b"\xc3" * (len(_MARKER_BYTES) - 2)  # same length: the wire framing stays valid

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
MAX_DEPTH = 4  # message nesting followed from a request
HUGE_REPEATED = 10_000
OVERSIZED_TEXT = 100_000

T = FieldDescriptor
_INTS32 = {T.TYPE_INT32, T.TYPE_SINT32, T.TYPE_SFIXED32}
_INTS64 = {T.TYPE_INT64, T.TYPE_SINT64, T.TYPE_SFIXED64}
_UINTS32 = {T.TYPE_UINT32, T.TYPE_FIXED32}
_UINTS64 = {T.TYPE_UINT64, T.TYPE_FIXED64}
_FLOATS = {T.TYPE_DOUBLE, T.TYPE_FLOAT}

STRINGS = {
    "empty": "", "oversized": "x" * OVERSIZED_TEXT, "nul": "a\x00b", "control": "a\x01\x1b\x7fb",
    "newline": "a\r\nb", "unicode": "Zürich-😀", "format_chars": "a\u202eb\u200b", "backslash": "a\\",
    "quotes": "a'\"b", "invalid_utf8": MARKER,
}
BYTES = {"empty": b"", "oversized": b"\x00" * 1_100_000, "binary": bytes(range(256))}


def _scalar_values(f: FieldDescriptor) -> dict[str, Any]:
    if f.type == T.TYPE_STRING:
        return STRINGS
    if f.type == T.TYPE_BYTES:
        return BYTES
    if f.type in _INTS32:
        return {"minus_one": -1, "zero": 0, "int32_max": INT32[1], "int32_min": INT32[0]}
    if f.type in _INTS64:
        return {"minus_one": -1, "zero": 0, "above_int32": 2**31, "int64_max": INT64[1], "int64_min": INT64[0]}
    if f.type in _UINTS32:
        return {"zero": 0, "uint32_max": 2**32 - 1}
    if f.type in _UINTS64:
        return {"zero": 0, "above_int64": 2**63, "uint64_max": 2**64 - 1}
    if f.type in _FLOATS:
        big = 1e308 if f.type == T.TYPE_DOUBLE else 3.4e38
        return {"nan": math.nan, "inf": math.inf, "minus_inf": -math.inf, "huge": big, "minus_huge": -big,
                "minus_zero": -0.0, "tiny": 5e-324 if f.type == T.TYPE_DOUBLE else 1e-45}
    if f.type == T.TYPE_BOOL:
        return {"true": True, "false": False}
    if f.type == T.TYPE_ENUM:
        return {"unknown_enum": 999, "negative_enum": -1}
    raise AssertionError(f"unhandled field type {f.type} of {f.full_name}")


# Well-known types: (seconds, nanos) pairs. Those outside the type's documented range exist only on
# the wire (JSON cannot spell them).
TIMESTAMPS = {
    "ts_epoch": (0, 0), "ts_year_1": (-62135596800, 0), "ts_year_9999": (253402300799, 999_999_999),
    "ts_before_1678": (-10_000_000_000, 0), "ts_after_2262": (9_300_000_000, 0),
    "ts_below_range": (-62135596801, 0), "ts_above_range": (253402300800, 0), "ts_int64_max": (INT64[1], 0),
    "ts_negative_nanos": (0, -1), "ts_nanos_overflow": (0, 1_000_000_000),
}
DURATIONS = {
    "dur_zero": (0, 0), "dur_one_ns": (0, 1), "dur_negative": (-1, 0), "dur_max": (315_576_000_000, 0),
    "dur_min": (-315_576_000_000, 0), "dur_int64_max": (INT64[1], 0), "dur_int64_min": (INT64[0], 0),
    "dur_mixed_signs": (1, -1), "dur_nanos_overflow": (0, 2_000_000_000),
}


def _deep_struct(depth: int) -> dict:
    node: dict = {"leaf": 1}
    for _ in range(depth):
        node = {"n": node}
    return node


STRUCTS = {
    "struct_deep_20": _deep_struct(20), "struct_deep_200": _deep_struct(200),
    "struct_wide": {f"k{i}": i for i in range(HUGE_REPEATED)}, "struct_huge_key": {"k" * 1_000_000: 1},
    "struct_nul": {"a\x00": "b\x00"}, "struct_invalid_utf8": {MARKER: 1},
}
MAPS = {
    "map_many": {f"k{i}": "v" for i in range(HUGE_REPEATED)}, "map_huge_key": {"k" * 1_000_000: "v"},
    "map_huge_value": {"k": "v" * 1_000_000}, "map_empty_key": {"": "v"}, "map_nul": {"a\x00": "b\x00"},
    "map_control": {"a\x01": "b\x1b"}, "map_invalid_utf8": {MARKER: MARKER},
}
MASKS = {
    "mask_empty_path": [""], "mask_nul": ["name\x00"], "mask_oversized": ["x" * OVERSIZED_TEXT],
    "mask_many": ["name"] * HUGE_REPEATED, "mask_unknown": ["no_such_field"], "mask_invalid_utf8": [MARKER],
}


@dataclass(frozen=True)
class Method:
    service: str  # banhammer.energy.v1.BuildingService
    name: str
    descriptor: MethodDescriptor
    request: type[Message]
    response: type[Message]

    @property
    def path(self) -> str:
        return f"/{self.service}/{self.name}"

    @property
    def client_streaming(self) -> bool:
        return self.descriptor.client_streaming

    @property
    def server_streaming(self) -> bool:
        return self.descriptor.server_streaming

    @property
    def side_effect_free(self) -> bool:
        return self.descriptor.GetOptions().idempotency_level == descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS


@dataclass
class Case:
    method: Method
    field: str  # the field path replaced ("" for whole-request cases)
    label: str
    message: Message | None  # None: raw bytes only
    wire: bytes
    json: Any = field(default=None)  # JSON-ready value (dict), None where JSON cannot express the case
    patch_json: bool = False  # replace MARKER in the JSON text with invalid UTF-8

    @property
    def name(self) -> str:
        return f"{self.method.path} {self.field or '<request>'}={self.label}"


def methods() -> list[Method]:
    """Every RPC of the banhammer.* packages in the descriptor set, with its message classes."""
    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR.read_bytes())
    db = symbol_database.Default()
    out = []
    for f in files.file:
        if not f.package.startswith("banhammer.") or not f.service:
            continue
        __import__(f.name[:-len(".proto")].replace("/", ".") + "_pb2")  # registers its types
        for s in f.service:
            service = db.pool.FindServiceByName(f"{f.package}.{s.name}")
            for m in service.methods:
                out.append(Method(service.full_name, m.name, m, message_factory.GetMessageClass(m.input_type),
                                  message_factory.GetMessageClass(m.output_type)))
    return out


def methods_by_path() -> dict[str, Method]:
    return {m.path: m for m in methods()}


def _wire(message: Message) -> bytes:
    return message.SerializeToString().replace(_MARKER_BYTES, _INVALID)


def _json(message: Message) -> Any:
    try:
        return json_format.MessageToDict(message, preserving_proto_field_name=True)
    except (json_format.SerializeToJsonError, ValueError, OverflowError, RecursionError):
        return None  # out-of-range well-known types, nesting too deep for the converter: gRPC only


def json_bytes(value: Any, patch: bool) -> bytes:
    text = json.dumps(value, ensure_ascii=False).encode()
    return text.replace(_MARKER_BYTES, _INVALID) if patch else text


def _is_map(f: FieldDescriptor) -> bool:
    return f.message_type is not None and f.message_type.GetOptions().map_entry


def _wkt(f: FieldDescriptor) -> str | None:
    name = f.message_type.full_name if f.message_type else ""
    return name if name.startswith("google.protobuf.") else None


Mutation = tuple[str, Callable[[Message], None]]


def _set_seconds(target: Message, value: tuple[int, int]) -> None:
    target.seconds, target.nanos = value


def _mutations(f: FieldDescriptor) -> Iterator[Mutation]:
    """(label, apply(parent)) for each hostile value of field ``f`` of a parent message."""
    name = f.name
    if _is_map(f):
        for label, entries in MAPS.items():
            def put(parent, entries=entries):
                target = getattr(parent, name)
                target.clear()
                target.update(entries)
            yield label, put
        return
    wkt = _wkt(f)
    if f.is_repeated:
        yield "repeated_empty", lambda parent: parent.ClearField(name)
        if f.message_type is not None:
            def many(parent):
                items = getattr(parent, name)
                element = copy.deepcopy(items[0]) if len(items) else message_factory.GetMessageClass(f.message_type)()
                del items[:]
                items.extend(copy.deepcopy(element) for _ in range(HUGE_REPEATED))
            yield "repeated_huge", many
            return
        values = _scalar_values(f)

        def many_scalars(parent):
            items = getattr(parent, name)
            element = items[0] if len(items) else next(iter(values.values()))
            del items[:]
            items.extend([element] * HUGE_REPEATED)
        yield "repeated_huge", many_scalars
        for label, value in values.items():
            def one(parent, value=value):
                getattr(parent, name).append(value)
            yield f"element_{label}", one
        return
    if wkt == "google.protobuf.Timestamp":
        for label, value in TIMESTAMPS.items():
            yield label, lambda parent, value=value: _set_seconds(getattr(parent, name), value)
    elif wkt == "google.protobuf.Duration":
        for label, value in DURATIONS.items():
            yield label, lambda parent, value=value: _set_seconds(getattr(parent, name), value)
    elif wkt == "google.protobuf.Struct":
        for label, value in STRUCTS.items():
            def fill(parent, value=value):
                target = getattr(parent, name)
                target.Clear()
                target.update(value)
            yield label, fill
    elif wkt == "google.protobuf.FieldMask":
        for label, paths in MASKS.items():
            def mask(parent, paths=paths):
                target = getattr(parent, name)
                target.Clear()
                target.paths.extend(paths)
            yield label, mask
    elif wkt is not None:
        raise AssertionError(f"no hostile values for {wkt} ({f.full_name})")
    elif f.message_type is not None:
        yield "unset", lambda parent: parent.ClearField(name)
    else:
        for label, value in _scalar_values(f).items():
            yield label, lambda parent, value=value: setattr(parent, name, value)


def _first(items) -> Message:
    return items[0] if len(items) else items.add()


def _walk(desc: Descriptor, reach: Callable[[Message], Message], prefix: str,
          depth: int) -> Iterator[tuple[str, str, Callable[[Message], None]]]:
    """(field path, label, apply(root)) for every field reachable from the request root."""
    for f in desc.fields:
        for label, apply in _mutations(f):
            yield prefix + f.name, label, lambda root, apply=apply, reach=reach: apply(reach(root))
        if f.message_type is None or _is_map(f) or _wkt(f) or depth >= MAX_DEPTH:
            continue
        if f.is_repeated:
            sub = lambda root, reach=reach, f=f: _first(getattr(reach(root), f.name))  # noqa: E731
            yield from _walk(f.message_type, sub, f"{prefix}{f.name}[0].", depth + 1)
        else:
            sub = lambda root, reach=reach, f=f: getattr(reach(root), f.name)  # noqa: E731
            yield from _walk(f.message_type, sub, f"{prefix}{f.name}.", depth + 1)


def cases(method: Method, baseline: Message) -> list[Case]:
    """Every hostile case of ``method``: whole-request ones, then one per field and value."""
    out = [
        Case(method, "", "baseline", baseline, _wire(baseline), _json(baseline)),
        Case(method, "", "empty_request", method.request(), b"", {}),
        Case(method, "", "garbage_bytes", None, b"\xff\xff\xff\xff\x0f"),
        Case(method, "", "unknown_field", None, baseline.SerializeToString() + b"\xf8\xff\x3f\x01"),
    ]
    for path, label, apply in _walk(method.request.DESCRIPTOR, lambda root: root, "", 0):
        message = copy.deepcopy(baseline)
        apply(message)
        wire = _wire(message)
        body = _json(message)
        patch = body is not None and MARKER in json.dumps(body, ensure_ascii=False)
        out.append(Case(method, path, label, message, wire, body, patch))
    return out
