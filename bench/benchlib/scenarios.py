"""The scenarios: what each row of the table sends, and how it is measured."""

import json
import os
import statistics
import subprocess
import time

from . import common
from .common import BENCH, VERIFIER, children_cpu_seconds, form, request, wrk
from .usage import Usage

EXCHANGE = {"grant_type": "urn:ietf:params:oauth:grant-type:token-exchange", "subject_token_type": "urn:sesame:params:oauth:token-type:api_key"}
# More than sesame answers per second on this machine (ES256 token + ES256 proof verification):
# a thread that ran out would replay proofs, which are refused and counted as errors.
DPOP_PROOFS_PER_SECOND = 25000

# The rows, in the table's order. A scenario the target cannot do is left out of its column.
ROWS = [
    "client_credentials RS256",
    "client_credentials ES256",
    "client_credentials EdDSA",
    "client_credentials ES256 + DPoP",
    "client_credentials ES256 + mTLS (proxy header)",
    "refresh_token rotation (RS256)",
    "JWKS GET",
    "discovery GET",
    "introspect JWT",
    "introspect refresh token",
    "introspect API key",
    "API key test (admin API)",
    "API key exchanged for a JWT (RS256)",
    "code + PKCE round (requests/s; 2 per round)",
    "password logins",
]


def scenarios(t, connections):
    """Each row: (path, script, env), env a dict or a function called before every run (fresh
    proofs, chains or tokens)."""
    post = lambda path, body, auth="", expect=None, **extra: (path, "form.lua", {"PATH_": path, "AUTH": auth, "BODY": body, **({"EXPECT": expect} if expect else {}), **extra})
    token = lambda alg: post(t["token_path"], form({"grant_type": "client_credentials", **({"resource": t["cc_resource"][alg]} if t["cc_resource"] else {})}), t["cc"][alg])
    out = {
        "client_credentials RS256": token("RS256"),
        "client_credentials ES256": token("ES256"),
        "client_credentials EdDSA": token("EdDSA"),
        "JWKS GET": (t["jwks_path"], None, None),
        "discovery GET": ("/.well-known/openid-configuration", None, None),

        # By the client that holds it: sesame describes a refresh token to no other client. A new
        # token for every run, whatever the rows before did to the grant.
        "introspect refresh token": (t["introspect_path"], "form.lua", lambda: {"PATH_": t["introspect_path"], "AUTH": t["offline_auth"],
                                     "BODY": form({"token": t["new_chains"](1)[0]}), "EXPECT": '"active":true'}),
        "refresh_token rotation (RS256)": (t["token_path"], "refresh.lua", lambda: {"PATH_": t["token_path"], "AUTH": t["offline_auth"], "CHAINS": chains_file(t, connections)}),
        "code + PKCE round (requests/s; 2 per round)": (t["authorize"], "code_round.lua", {
            "AUTHORIZE": t["authorize"], "COOKIE": t["cookie"], "TOKEN_PATH": t["token_path"], "AUTH": t["web_auth"],
            "TOKEN_BODY": form({"grant_type": "authorization_code", "redirect_uri": "http://127.0.0.1:9/cb", "code_verifier": VERIFIER}) + "&code="}),
    }
    if t.get("introspects_jwt", True):
        out["introspect JWT"] = post(t["introspect_path"], form({"token": t["access_token"]}), t["rs_auth"], '"active":true')
    if t.get("dpop_proofs"):
        # Fresh proofs for every run (a function: called before each), made just before it.
        out["client_credentials ES256 + DPoP"] = (t["token_path"], "dpop.lua", lambda: {"PATH_": t["token_path"], "AUTH": t["cc"]["ES256"],
                                                  "BODY": form({"grant_type": "client_credentials"}), "PROOFS_PREFIX": t["dpop_proofs"]()})
    if t.get("mtls"):
        m = t["mtls"]
        out["client_credentials ES256 + mTLS (proxy header)"] = post(
            t["token_path"], form({"grant_type": "client_credentials", "client_id": m["client_id"], **({"resource": m["resource"]} if m["resource"] else {})}),
            expect='"access_token"', HEADER_NAME=m["header"], HEADER_VALUE=m["escaped"])
    if t.get("api_key"):
        key = t["api_key"]
        out["introspect API key"] = post(t["introspect_path"], form({"token": key}), t["rs_auth"], '"active":true')
        # The admin API's token lives 15 minutes: a fresh one for every run.
        out["API key test (admin API)"] = ("/admin/api-keys/test", "form.lua", lambda: {
            "PATH_": "/admin/api-keys/test", "AUTH_SCHEME": "Bearer", "AUTH": t["admin_token"](), "CONTENT_TYPE": "application/json",
            "BODY": json.dumps({"key": key}), "EXPECT": '"valid":true'})
        out["API key exchanged for a JWT (RS256)"] = post(t["token_path"], form({**EXCHANGE, "subject_token": key}), expect='"access_token"')
    if t["login_body"]:
        out["password logins"] = ("/login", "form.lua", {"PATH_": "/login", "AUTH": "", "BODY": t["login_body"], "COOKIE": t["login_cookie"]})
    return {name: out[name] for name in ROWS if name in out}


def chains_file(t, count):
    """`count` new refresh-token chains (one per connection), in a file for refresh.lua."""
    path = os.path.join(common.RESULTS, f"chains-{time.time_ns()}.txt")
    with open(path, "w") as f:
        f.write("".join(token + "\n" for token in t["new_chains"](count)))
    return path


def access_token(server, t):
    body = form({"grant_type": "client_credentials", **({"resource": t["cc_resource"]["RS256"]} if t["cc_resource"] else {})})
    _, _, data = request(server.base, "POST", t["token_path"], {"Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Basic {t['cc']['RS256']}"}, body)
    return json.loads(data)["access_token"]


def dpop_proofs(t, args):
    """One single-use proof per request one run of the DPoP scenario can send (at most
    DPOP_PROOFS_PER_SECOND per second), two files for wrk's two threads; their path prefix."""
    prefix = os.path.join(common.RESULTS, "dpop-proofs-")
    count = DPOP_PROOFS_PER_SECOND * args.duration
    subprocess.run(["node", os.path.join(BENCH, "dpop_proofs.mjs"), t["token_endpoint"], str(count), "2", prefix], check=True)
    return prefix


def measure(server, t, args, only=None, with_stores=False):
    """Every scenario (or those named in `only`), `args.runs` times; the medians, and the CPU time
    per request of sesame (and, `with_stores`, of its PostgreSQL backends and Redis) and of wrk."""
    t["access_token"] = access_token(server, t)
    if "token_endpoint" in t:
        t["dpop_proofs"] = lambda: dpop_proofs(t, args)
    usage = Usage(server.proc.pid, with_stores) if getattr(server, "is_sesame", False) else None
    results = {}
    for name, (path, script, env) in scenarios(t, args.connections).items():
        if only and name not in only:
            continue
        runs = []
        for _ in range(args.runs):
            env_now = env() if callable(env) else env
            before, wrk_before = (usage.snapshot() if usage else None), children_cpu_seconds()
            r = wrk(server.base, path, args.duration, args.connections, script, env_now)
            r["wrk_cpu_us"] = round((children_cpu_seconds() - wrk_before) * 1e6 / r["requests"], 1) if r["requests"] else None
            if usage:
                r["cpu_us"] = Usage.per_request(before, usage.snapshot(), r["requests"])
            runs.append(r)
        median = lambda key: statistics.median(r[key] or 0 for r in runs)
        results[name] = {"rps": median("rps"), "p50_ms": median("p50_ms"), "p99_ms": median("p99_ms"), "errors": sum(r["errors"] for r in runs),
                         "wrk_cpu_us_per_request": median("wrk_cpu_us")}
        if usage:
            results[name]["cpu_us_per_request"] = {k: statistics.median(r["cpu_us"].get(k, 0) for r in runs) for k in runs[0]["cpu_us"]}
        print(f"  {server.name:<14} {name:<48} {results[name]['rps']:>10.0f} req/s  errors {results[name]['errors']}", flush=True)
    return results


def token_p99_under_login_flood(server, t, args):
    """The token endpoint's latency while a login flood saturates Argon2."""
    flood = subprocess.Popen(["wrk", "-t1", "-c16", f"-d{args.duration + 2}s", "-s", os.path.join(BENCH, "lua", "form.lua"), server.base + "/login"],
                             env={**os.environ, "PATH_": "/login", "AUTH": "", "BODY": t["login_body"], "COOKIE": t["login_cookie"]}, stdout=subprocess.DEVNULL)
    time.sleep(1)
    env = {"PATH_": "/token", "AUTH": t["cc"]["RS256"], "BODY": form({"grant_type": "client_credentials"})}
    result = wrk(server.base, "/token", args.duration, 8, "form.lua", env)
    flood.wait()
    return result
