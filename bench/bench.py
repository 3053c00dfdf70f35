#!/usr/bin/env python3
"""sesame's load benchmark, side by side with node-oidc-provider, in one run.

Starts sesame on the embedded default (and on PostgreSQL + Redis when SESAME_BENCH_DATABASE_URL
and SESAME_BENCH_REDIS_URL are set), starts the peer, drives each with wrk at the same
concurrency, and prints one table (median of several runs) plus JSON in bench/results/.
"""

import argparse
import base64
import http.client
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import time
import urllib.parse

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
SECRET = "bench-" + secrets.token_urlsafe(16)
PASSWORD = "bench password 123"
AUDIENCE = "https://api.example.com/"
VERIFIER = "bench-verifier-" + "v" * 40
CHALLENGE = base64.urlsafe_b64encode(__import__("hashlib").sha256(VERIFIER.encode()).digest()).rstrip(b"=").decode()


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=60):
    import socket

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on port {port}")


class Server:
    def __init__(self, name, cmd, env, cwd, port):
        self.name, self.port, self.base = name, port, f"http://127.0.0.1:{port}"
        self.log = open(os.path.join(RESULTS, f"{name}.log"), "w")
        self.proc = subprocess.Popen(cmd, env={**os.environ, **env}, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT)
        wait_port(port)

    def rss_kib(self, field="VmRSS"):
        with open(f"/proc/{self.proc.pid}/status") as f:
            return int(re.search(rf"{field}:\s+(\d+)", f.read()).group(1))

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def request(base, method, path, headers=None, body=None):
    conn = http.client.HTTPConnection(base.split("//")[1], timeout=30)
    conn.request(method, path, body=body, headers=headers or {})
    res = conn.getresponse()
    data = res.read()
    conn.close()
    return res.status, res.getheaders(), data


def form(data):
    return urllib.parse.urlencode(data)


def basic(client_id, secret):
    return base64.b64encode(f"{urllib.parse.quote(client_id)}:{urllib.parse.quote(secret)}".encode()).decode()


def cookies_from(headers, jar):
    for k, v in headers:
        if k.lower() == "set-cookie":
            name, _, rest = v.partition("=")
            jar[name] = rest.split(";")[0]
    return jar


def header(headers, name):
    return next((v for k, v in headers if k.lower() == name), None)


# --- sesame -----------------------------------------------------------------------------------

def sesame_cli(binary, env, *args):
    out = subprocess.run([binary, *args, "--json"], env={**os.environ, **env}, cwd=env["_CWD"], capture_output=True, text=True, input=PASSWORD)
    if out.returncode != 0:
        raise SystemExit(f"sesame {' '.join(args)} failed: {out.stderr}")
    return json.loads(out.stdout)


def start_sesame(binary, name, database_url, redis_url):
    workdir = os.path.join(RESULTS, f"{name}-data")
    os.makedirs(workdir, exist_ok=True)
    port = free_port()
    env = {
        "_CWD": workdir,
        "SESAME_LISTEN": f"127.0.0.1:{port}",
        "SESAME_ISSUER": f"http://127.0.0.1:{port}",
        "SESAME_DATABASE_URL": database_url,
        "SESAME_LOGIN__MAX_FAILURES_PER_ACCOUNT": "1000000000",
        "SESAME_LOGIN__MAX_FAILURES_PER_IP": "1000000000",
        "RUST_LOG": "warn",
    }
    if redis_url:
        env["SESAME_REDIS_URL"] = redis_url
    else:
        env.pop("SESAME_REDIS_URL", None)
    cli = lambda *a: sesame_cli(binary, env, *a)
    cli("migrate")
    cli("user", "add", "alice", "--password-stdin")
    clients = {}
    for alg in ["RS256", "ES256", "EdDSA"]:
        c = cli("client", "add", "--name", f"cc-{alg}", "--grant-type", "client_credentials", "--scope", "api:read", "--access-token-alg", alg)
        clients[alg] = (c["client_id"], c["client_secret"])
    rs = cli("client", "add", "--name", "rs", "--grant-type", "client_credentials", "--scope", "introspect")
    # Like the peer's web client in this round: no refresh token (the peer issues none without offline_access).
    web = cli("client", "add", "--name", "web", "--first-party", "--redirect-uri", "http://127.0.0.1:9/cb", "--grant-type", "authorization_code")
    server = Server(name, [binary, "serve"], {k: v for k, v in env.items() if k != "_CWD"}, workdir, port)
    time.sleep(1)
    server.idle_rss = server.rss_kib()
    # A live SSO session, a refresh token, and a pending login form for the login flood.
    query = form({"response_type": "code", "client_id": web["client_id"], "redirect_uri": "http://127.0.0.1:9/cb", "scope": "openid",
                  "code_challenge": CHALLENGE, "code_challenge_method": "S256"})
    # One pending request to sign in with now; another, never completed, for the login flood.
    # Both belong to one browser: the binding cookie the first answer sets goes with every step.
    _, h, _ = request(server.base, "GET", f"/authorize?{query}")
    browser_cookie = f"sesame_browser={cookies_from(h, {})['sesame_browser']}"
    flood_page = request(server.base, "GET", header(h, "location"), {"Cookie": browser_cookie})[2].decode()
    _, h, _ = request(server.base, "GET", f"/authorize?{query}", {"Cookie": browser_cookie})
    login_path = header(h, "location")
    _, _, page = request(server.base, "GET", login_path, {"Cookie": browser_cookie})
    page = page.decode()
    hidden = lambda n: re.search(rf'name="{n}" value="([^"]*)"', page).group(1)
    login_body = form({"req": hidden("req"), "csrf": hidden("csrf"), "username": "alice", "password": PASSWORD})
    flood_field = lambda n: re.search(rf'name="{n}" value="([^"]*)"', flood_page).group(1)
    flood_body = form({"req": flood_field("req"), "csrf": flood_field("csrf"), "username": "alice", "password": PASSWORD})
    status, h, _ = request(server.base, "POST", "/login", {"Content-Type": "application/x-www-form-urlencoded", "Cookie": browser_cookie}, login_body)
    jar = cookies_from(h, {})
    cookie = f"sesame_session={jar['sesame_session']}"
    _, h, _ = request(server.base, "GET", header(h, "location"), {"Cookie": f"{cookie}; {browser_cookie}"})
    code = urllib.parse.parse_qs(urllib.parse.urlparse(header(h, "location")).query)["code"][0]
    web_auth = basic(web["client_id"], web["client_secret"])
    request(server.base, "POST", "/token", {"Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Basic {web_auth}"},
            form({"grant_type": "authorization_code", "code": code, "redirect_uri": "http://127.0.0.1:9/cb", "code_verifier": VERIFIER}))
    # A refresh token to introspect, from a client that may have them (same session: no login).
    offline = cli("client", "add", "--name", "offline", "--first-party", "--redirect-uri", "http://127.0.0.1:9/cb")
    offline_query = query.replace(urllib.parse.quote(web["client_id"]), urllib.parse.quote(offline["client_id"]))
    _, h, _ = request(server.base, "GET", f"/authorize?{offline_query}", {"Cookie": cookie})
    code = urllib.parse.parse_qs(urllib.parse.urlparse(header(h, "location")).query)["code"][0]
    _, _, body = request(server.base, "POST", "/token", {"Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Basic {basic(offline['client_id'], offline['client_secret'])}"},
                         form({"grant_type": "authorization_code", "code": code, "redirect_uri": "http://127.0.0.1:9/cb", "code_verifier": VERIFIER}))
    refresh = json.loads(body)["refresh_token"]
    return server, {
        "cc": {alg: basic(*c) for alg, c in clients.items()},
        "cc_resource": {},
        "rs_auth": basic(rs["client_id"], rs["client_secret"]),
        "token_path": "/token",
        "introspect_path": "/introspect",
        "jwks_path": "/jwks.json",
        "authorize": f"/authorize?{query}",
        "cookie": cookie,
        "web_auth": web_auth,
        "refresh": refresh,
        "login_body": flood_body,
        "login_cookie": browser_cookie,
    }


# --- the peer ---------------------------------------------------------------------------------

def start_peer():
    port = free_port()
    server = Server("peer", ["node", "peer/provider.mjs"], {"PORT": str(port), "CLIENT_SECRET": SECRET, "NODE_ENV": "production"}, BENCH, port)
    _, _, doc = request(server.base, "GET", "/.well-known/openid-configuration")
    doc = json.loads(doc)
    path = lambda url: urllib.parse.urlparse(url).path
    query = form({"response_type": "code", "client_id": "bench-web", "redirect_uri": "http://127.0.0.1:9/cb", "scope": "openid",
                  "code_challenge": CHALLENGE, "code_challenge_method": "S256"})
    authorize = f"{path(doc['authorization_endpoint'])}?{query}"
    jar = {}
    _, h, _ = request(server.base, "GET", authorize)
    cookies_from(h, jar)
    location = header(h, "location")
    for _ in range(12):
        cookie = "; ".join(f"{k}={v}" for k, v in jar.items())
        if location.startswith("http://127.0.0.1:9/cb"):
            break
        parsed = urllib.parse.urlparse(location)
        target = parsed.path + (f"?{parsed.query}" if parsed.query else "")
        status, h, page = request(server.base, "GET", target, {"Cookie": cookie})
        cookies_from(h, jar)
        if status == 200:
            # A devInteractions page (login or consent): submit its form.
            page = page.decode()
            action = urllib.parse.urlparse(re.search(r'<form[^>]*action="([^"]+)"', page).group(1)).path
            fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))
            fields.update({"login": "alice", "password": "x"})
            cookie = "; ".join(f"{k}={v}" for k, v in jar.items())
            _, h, _ = request(server.base, "POST", action, {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie}, form(fields))
            cookies_from(h, jar)
        location = header(h, "location")
        if location is None:
            raise SystemExit(f"the peer's sign-in dance stopped at {target} ({status})")
    session_cookie = "; ".join(f"{k}={v}" for k, v in jar.items() if k.startswith("_session"))
    cc = basic("bench-cc", SECRET)
    return server, {
        "cc": {"RS256": cc, "ES256": cc, "EdDSA": cc},
        "cc_resource": {"RS256": "https://api.example.com/", "ES256": "https://api-es256.example.com/", "EdDSA": "https://api-eddsa.example.com/"},
        "rs_auth": basic("bench-rs", SECRET),
        "token_path": path(doc["token_endpoint"]),
        "introspect_path": path(doc["introspection_endpoint"]),
        "jwks_path": path(doc["jwks_uri"]),
        "authorize": authorize,
        "cookie": session_cookie,
        "web_auth": basic("bench-web", SECRET),
        "refresh": None,
        "login_body": None,
        "login_cookie": "",
    }


# --- load -------------------------------------------------------------------------------------

def wrk(base, path, duration, connections, script=None, env=None):
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "10s"]
    if script:
        cmd += ["-s", os.path.join(BENCH, "lua", script)]
    out = subprocess.run(cmd + [base + path], env={**os.environ, **(env or {})}, capture_output=True, text=True).stdout
    unit = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    pct = lambda p: (lambda m: float(m.group(1)) * unit[m.group(2)] if m else None)(re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M))
    errors = sum(int(x) for x in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if sock:
        errors += sum(int(x) for x in sock.groups())
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return {"rps": float(rps.group(1)) if rps else 0.0, "p50_ms": pct(50), "p99_ms": pct(99), "errors": errors}


def scenarios(t):
    token = lambda alg: (t["token_path"], "form.lua", {"PATH_": t["token_path"], "AUTH": t["cc"][alg],
                         "BODY": form({"grant_type": "client_credentials", **({"resource": t["cc_resource"][alg]} if t["cc_resource"] else {})})})
    out = {
        "client_credentials RS256": token("RS256"),
        "client_credentials ES256": token("ES256"),
        "client_credentials EdDSA": token("EdDSA"),
        "JWKS GET": (t["jwks_path"], None, None),
        "discovery GET": ("/.well-known/openid-configuration", None, None),
        "introspect JWT": (t["introspect_path"], "form.lua", {"PATH_": t["introspect_path"], "AUTH": t["rs_auth"], "BODY": form({"token": t["access_token"]})}),
        "code + PKCE round (requests/s; 2 per round)": (t["authorize"], "code_round.lua", {
            "AUTHORIZE": t["authorize"], "COOKIE": t["cookie"], "TOKEN_PATH": t["token_path"], "AUTH": t["web_auth"],
            "TOKEN_BODY": form({"grant_type": "authorization_code", "redirect_uri": "http://127.0.0.1:9/cb", "code_verifier": VERIFIER}) + "&code="}),
    }
    if t["refresh"]:
        out["introspect refresh token"] = (t["introspect_path"], "form.lua", {"PATH_": t["introspect_path"], "AUTH": t["rs_auth"], "BODY": form({"token": t["refresh"]})})
    if t["login_body"]:
        out["password logins"] = ("/login", "form.lua", {"PATH_": "/login", "AUTH": "", "BODY": t["login_body"], "COOKIE": t["login_cookie"]})
    return out


def access_token(server, t):
    body = form({"grant_type": "client_credentials", **({"resource": t["cc_resource"]["RS256"]} if t["cc_resource"] else {})})
    _, _, data = request(server.base, "POST", t["token_path"], {"Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Basic {t['cc']['RS256']}"}, body)
    return json.loads(data)["access_token"]


def measure(server, t, args):
    t["access_token"] = access_token(server, t)
    results = {}
    for name, (path, script, env) in scenarios(t).items():
        runs = [wrk(server.base, path, args.duration, args.connections, script, env) for _ in range(args.runs)]
        results[name] = {
            "rps": statistics.median(r["rps"] for r in runs),
            "p50_ms": statistics.median(r["p50_ms"] or 0 for r in runs),
            "p99_ms": statistics.median(r["p99_ms"] or 0 for r in runs),
            "errors": sum(r["errors"] for r in runs),
        }
        print(f"  {server.name:<14} {name:<44} {results[name]['rps']:>10.0f} req/s", flush=True)
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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=5, help="seconds per run")
    parser.add_argument("--runs", type=int, default=3, help="runs per scenario (the median is reported)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--smoke", action="store_true", help="a very short run, to check that everything starts")
    parser.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "sesame"))
    args = parser.parse_args()
    if args.smoke:
        args.duration, args.runs, args.connections = 1, 1, 4
    global RESULTS
    RESULTS = os.path.join(BENCH, "results", time.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(RESULTS, exist_ok=True)

    targets = {}
    sesame, t = start_sesame(args.binary, "sesame", "sqlite://sesame.db", None)
    idle_rss = sesame.idle_rss
    ceiling_bin = os.path.join(os.path.dirname(args.binary), "sign-ceiling")
    ceiling = json.loads(subprocess.run([ceiling_bin, str(max(1, args.duration // 2))], capture_output=True, text=True, check=True).stdout)
    print(f"signing ceiling (all cores, parsed key): {ceiling}", flush=True)
    targets["sesame"] = measure(sesame, t, args)
    flood = token_p99_under_login_flood(sesame, t, args)
    peak_rss = sesame.rss_kib("VmHWM")
    sesame.stop()

    db, redis = os.environ.get("SESAME_BENCH_DATABASE_URL"), os.environ.get("SESAME_BENCH_REDIS_URL")
    if db and redis:
        pg, t2 = start_sesame(args.binary, "sesame-pg", db, redis)
        targets["sesame (PostgreSQL + Redis)"] = measure(pg, t2, args)
        pg.stop()

    peer, tp = start_peer()
    targets["node-oidc-provider"] = measure(peer, tp, args)
    peer_rss = peer.rss_kib("VmHWM")
    peer.stop()

    report = {"machine": os.uname().release, "cores": os.cpu_count(), "duration_s": args.duration, "runs": args.runs,
              "connections": args.connections, "signing_ceiling": ceiling, "results": targets,
              "token_under_login_flood": flood, "sesame_rss_kib": {"idle": idle_rss, "peak": peak_rss}, "peer_peak_rss_kib": peer_rss}
    with open(os.path.join(RESULTS, "results.json"), "w") as f:
        json.dump(report, f, indent=2)
    print_table(report)
    print(f"\nJSON: {os.path.relpath(os.path.join(RESULTS, 'results.json'), ROOT)}")
    if args.smoke:
        # sesame must answer every scenario without an error; the peer's troubles are reported
        # (they make its column meaningless) but are not ours to fail on.
        def broken(only_sesame):
            return [f"{target}: {name} ({r['rps']:.0f} req/s, {r['errors']} errors)"
                    for target, results in targets.items() if target.startswith("sesame") == only_sesame
                    for name, r in results.items() if r["rps"] <= 0 or r["errors"] > 0]
        if broken(False):
            print("smoke run: the peer failed in\n  " + "\n  ".join(broken(False)), file=sys.stderr)
        if broken(True):
            print("smoke run FAILED:\n  " + "\n  ".join(broken(True)), file=sys.stderr)
            sys.exit(1)
        print("smoke run: every sesame scenario answered, no errors")


def print_table(report):
    res = report["results"]
    s, p, pg = res["sesame"], res.get("node-oidc-provider", {}), res.get("sesame (PostgreSQL + Redis)", {})
    print(f"\n{report['cores']} cores, {report['connections']} connections, median of {report['runs']} x {report['duration_s']} s\n")
    print(f"| scenario | sesame req/s | p50 ms | p99 ms | errors | sesame PG+Redis req/s | peer req/s | peer p99 ms | sesame/peer |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in s.items():
        peer = p.get(name)
        ratio = f"{r['rps'] / peer['rps']:.1f}x" if peer and peer["rps"] else "-"
        pgr = f"{pg[name]['rps']:.0f}" if name in pg else "-"
        print(f"| {name} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['errors']} | {pgr} | "
              f"{peer['rps'] if peer else 0:.0f} | {peer['p99_ms'] if peer else 0:.2f} | {ratio} |")
    f = report["token_under_login_flood"]
    ceiling = report["signing_ceiling"]["RS256"]
    print(f"\nclient_credentials RS256 vs the signing ceiling ({ceiling:.0f}/s): {s['client_credentials RS256']['rps'] / ceiling:.0%}")
    print(f"token endpoint while logins flood: {f['rps']:.0f} req/s, p99 {f['p99_ms']:.2f} ms")
    rss = report["sesame_rss_kib"]
    print(f"sesame RSS: idle {rss['idle'] / 1024:.1f} MiB, peak {rss['peak'] / 1024:.1f} MiB; peer peak {report['peer_peak_rss_kib'] / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
