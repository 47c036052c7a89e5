"""The console's JSON API through the gateway, without a browser: sign-in failures, cross-site
requests, RPCs it does not offer, and the headers every answer carries."""

from __future__ import annotations

import http.client
import json
from http.cookies import SimpleCookie


def _call(gw, method: str, path: str, body: dict | None = None, headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=15)
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body),
                     headers={"content-type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def _signed_in(gw, token: str) -> dict:
    status, headers, _ = _call(gw, "POST", "/console/api/login", {"token": token})
    assert status == 200
    jar = SimpleCookie()
    for line in headers.get_all("set-cookie"):
        jar.load(line)
    assert jar["bh_console"]["httponly"] and jar["bh_console"]["samesite"] == "Strict"
    csrf = jar["bh_csrf"].value
    return {"cookie": f"bh_console={jar['bh_console'].value}; bh_csrf={csrf}", "x-csrf-token": csrf}


def test_sign_in_with_a_bad_token_or_password_is_refused(console_gateway):
    assert _call(console_gateway, "POST", "/console/api/login", {"token": "not-a-token"})[0] == 401
    assert _call(console_gateway, "POST", "/console/api/login", {"username": "nobody", "password": "x"})[0] == 401
    assert _call(console_gateway, "GET", "/console/api/me")[0] == 401


def test_cross_site_requests_are_refused(console_gateway, gateway_tokens):
    auth = _signed_in(console_gateway, gateway_tokens["admin"])
    path = "/console/api/rpc/banhammer.query.v1.QueryService/GetStatsOverview"
    assert _call(console_gateway, "POST", path, {}, auth)[0] == 200
    assert _call(console_gateway, "POST", path, {}, {**auth, "origin": "http://evil.example"})[0] == 403
    assert _call(console_gateway, "POST", path, {}, {**auth, "sec-fetch-site": "cross-site"})[0] == 403
    assert _call(console_gateway, "POST", path, {}, {**auth, "x-csrf-token": "guess"})[0] == 403
    assert _call(console_gateway, "POST", "/console/api/login", {"token": gateway_tokens["admin"]},
                 {"sec-fetch-site": "cross-site"})[0] == 403


def test_only_offered_rpcs_and_errors_keep_their_details(console_gateway, gateway_tokens):
    auth = _signed_in(console_gateway, gateway_tokens["admin"])
    status, _, _ = _call(console_gateway, "POST", "/console/api/rpc/banhammer.session.v1.SessionService/CreateSession",
                         {"subject": "x", "role": "admin"}, auth)
    assert status == 404  # not something the console does, whatever the caller's role
    status, _, body = _call(console_gateway, "POST", "/console/api/rpc/banhammer.query.v1.QueryService/GetPlayer",
                            {"player_id": ""}, auth)
    answer = json.loads(body)
    assert status == 400 and answer["code"] == "INVALID_ARGUMENT"
    assert [v["field"] for d in answer["details"] for v in d.get("field_violations", [])] == ["player_id"]
    status, _, _ = _call(console_gateway, "POST", "/console/api/rpc/banhammer.query.v1.QueryService/GetPlayer",
                         {"no_such_field": 1}, auth)
    assert status == 400


def test_pages_carry_a_strict_content_security_policy(console_gateway):
    status, headers, body = _call(console_gateway, "GET", "/console/")
    assert status == 200 and b"/console/assets/main.js" in body
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    status, headers, _ = _call(console_gateway, "GET", "/console")
    assert status == 301 and headers["location"].endswith("/console/")
