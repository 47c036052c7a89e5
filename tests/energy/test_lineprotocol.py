"""Line protocol escaping, property-tested against the real InfluxDB 1.x: random measurements, tag
keys/values and typed fields are written with the encoder and read back with InfluxQL."""

from __future__ import annotations

import itertools
import json
import urllib.parse
import urllib.request

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.energy.influx.client import quote_ident
from services.energy.influx.lineprotocol import encode_point, escape_key, quote_string, unrepresentable

DB = "lineprotocol_props"
_seq = itertools.count(1)

# Printable text with every character the protocol treats specially, plus non-ASCII.
SPECIAL = st.sampled_from(list(',= "\'\\#') + ["é", "한", "🌡", "\u00a0"])
PLAIN = st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"))
TEXT = st.text(st.one_of(SPECIAL, PLAIN), min_size=1, max_size=12)
NAME = TEXT.filter(lambda s: not unrepresentable(s) and s != "time" and not s.startswith("#")
                   and s.strip() == s and s.strip() != "")
FIELD_VALUE = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.one_of(SPECIAL, PLAIN), max_size=20),
    st.booleans(),
)


def _post(url: str, path: str, params: dict, body: bytes) -> tuple[int, bytes]:
    req = urllib.request.Request(f"{url}{path}?{urllib.parse.urlencode(params)}", data=body, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture(scope="module")
def influx(influx_server):
    influx_server.query(f'CREATE DATABASE "{DB}"')
    return influx_server


def test_escape_rules():
    assert escape_key("a b,c=d") == "a\\ b\\,c\\=d"
    assert quote_string('say "hi" \\o/') == '"say \\"hi\\" \\\\o/"'
    line = encode_point("m e,as", {"k": "v 1", "e": ""}, {"i": 3, "f": 3.0, "s": "x", "b": True}, 7)
    assert line == 'm\\ e\\,as,k=v\\ 1 i=3i,f=3.0,s="x",b=t 7'
    assert unrepresentable("ends\\") and unrepresentable("a\\,b") and unrepresentable("a\\ b")
    assert not unrepresentable("a\\b") and not unrepresentable('q"uote')


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(measurement=NAME, tags=st.dictionaries(NAME, NAME, max_size=4),
       fields=st.dictionaries(NAME, FIELD_VALUE, min_size=1, max_size=4))
def test_round_trip_through_influxdb(influx, measurement, tags, fields):
    if set(tags) & set(fields):
        tags = {k: v for k, v in tags.items() if k not in fields}
    measurement = f"{measurement}_{next(_seq)}"  # fresh schema per example (field types never clash)
    ts = 1_700_000_000_000_000_000 + next(_seq)
    line = encode_point(measurement, tags, fields, ts)
    status, body = _post(influx.url, "/write", {"db": DB, "precision": "ns"}, line.encode())
    assert status == 204, (line, body)
    status, body = _post(influx.url, "/query", {"db": DB, "epoch": "ns",
                                                 "q": f"SELECT * FROM {quote_ident(measurement)}"}, b"")
    series = json.loads(body)["results"][0]["series"]
    assert len(series) == 1 and series[0]["name"] == measurement
    row = dict(zip(series[0]["columns"], series[0]["values"][0]))
    assert row.pop("time") == ts
    assert {k: v for k, v in row.items() if k in tags} == tags
    for key, value in fields.items():
        got = row[key]
        if isinstance(value, bool):
            assert got is value
        elif isinstance(value, float):
            assert float(got) == value
        else:
            assert got == value and type(got) is type(value), (key, value, got)
