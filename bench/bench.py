#!/usr/bin/env python3
"""sesame's load benchmark, side by side with node-oidc-provider, in one run.

Starts sesame on the embedded default (and on PostgreSQL + Redis when SESAME_BENCH_DATABASE_URL
and SESAME_BENCH_REDIS_URL are set), starts the peer, drives each with wrk at the same
concurrency, and prints one table (median of several runs) plus JSON in bench/results/.
With --soak DURATION: sesame alone under a mixed load at 80% of its measured capacity, reported
per minute (see the soak section below and bench/README.md).
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
    server.cli = cli
    return server, {
        "cc": {alg: basic(*c) for alg, c in clients.items()},
        "cc_resource": {},
        "rs_auth": basic(rs["client_id"], rs["client_secret"]),
        "token_path": "/token",
        "token_endpoint": f"{server.base}/token",
        "introspect_path": "/introspect",
        "jwks_path": "/jwks.json",
        "authorize": f"/authorize?{query}",
        "cookie": cookie,
        "web_auth": web_auth,
        "refresh": refresh,
        "login_body": flood_body,
        "login_cookie": browser_cookie,
        # For the soak: new refresh-token chains are started with these.
        "offline_authorize": f"/authorize?{offline_query}",
        "offline_auth": basic(offline["client_id"], offline["client_secret"]),
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

def wrk(base, path, duration, connections, script=None, env=None, threads=2):
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "10s"]
    if script:
        cmd += ["-s", os.path.join(BENCH, "lua", script)]
    out = subprocess.run(cmd + [base + path], env={**os.environ, **(env or {})}, capture_output=True, text=True).stdout
    unit = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    pct = lambda p: (lambda m: float(m.group(1)) * unit[m.group(2)] if m else None)(re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M))
    non2xx = sum(int(x) for x in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    socket_errors = sum(int(x) for x in sock.groups()) if sock else 0
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    requests = re.search(r"(\d+) requests in", out)
    return {"rps": float(rps.group(1)) if rps else 0.0, "p50_ms": pct(50), "p99_ms": pct(99), "errors": non2xx + socket_errors,
            "requests": int(requests.group(1)) if requests else 0, "non_2xx_3xx": non2xx, "socket_errors": socket_errors}


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
    if t.get("dpop_proofs"):
        # Fresh proofs for every run (a function: called before each), made just before it.
        out["client_credentials ES256 + DPoP"] = (t["token_path"], "dpop.lua", lambda: {"PATH_": t["token_path"], "AUTH": t["cc"]["ES256"],
                                                  "BODY": form({"grant_type": "client_credentials"}), "PROOFS_PREFIX": t["dpop_proofs"]()})
    if t["refresh"]:
        out["introspect refresh token"] = (t["introspect_path"], "form.lua", {"PATH_": t["introspect_path"], "AUTH": t["rs_auth"], "BODY": form({"token": t["refresh"]})})
    if t["login_body"]:
        out["password logins"] = ("/login", "form.lua", {"PATH_": "/login", "AUTH": "", "BODY": t["login_body"], "COOKIE": t["login_cookie"]})
    return out


def access_token(server, t):
    body = form({"grant_type": "client_credentials", **({"resource": t["cc_resource"]["RS256"]} if t["cc_resource"] else {})})
    _, _, data = request(server.base, "POST", t["token_path"], {"Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Basic {t['cc']['RS256']}"}, body)
    return json.loads(data)["access_token"]


def dpop_proofs(t, args):
    """One single-use proof per request one run of the DPoP scenario can send (at most
    DPOP_PROOFS_PER_SECOND per second), two files for wrk's two threads; their path prefix."""
    prefix = os.path.join(RESULTS, "dpop-proofs-")
    count = DPOP_PROOFS_PER_SECOND * args.duration
    subprocess.run(["node", os.path.join(BENCH, "dpop_proofs.mjs"), t["token_endpoint"], str(count), "2", prefix], check=True)
    return prefix


# More than sesame answers per second on this machine (ES256 token + ES256 proof verification):
# a thread that ran out would replay proofs, which are refused and counted as errors.
DPOP_PROOFS_PER_SECOND = 25000


def measure(server, t, args):
    t["access_token"] = access_token(server, t)
    if "token_endpoint" in t:
        t["dpop_proofs"] = lambda: dpop_proofs(t, args)
    results = {}
    for name, (path, script, env) in scenarios(t).items():
        runs = [wrk(server.base, path, args.duration, args.connections, script, env() if callable(env) else env) for _ in range(args.runs)]
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


# --- soak -------------------------------------------------------------------------------------

# What the soak sends, by weight (requests per 100): client_credentials; refresh-token rotation
# (each chain presents its newest token); introspection (a JWT access token and an opaque refresh
# token in turn); API-key checks, half through the admin API's test endpoint (a resource server's
# check), half as token exchange of the key; password logins (POST of the sign-in form, Argon2id).
SOAK_MIX = {"cc": 30, "refresh": 20, "introspect": 29, "apikey_test": 10, "apikey_exchange": 10, "login": 1}
SOAK_THREADS = 2
# The logins' own wrk (see Soak.run): enough connections for their rate at Argon2id's latency.
SOAK_LOGIN_CONNECTIONS = 8


def parse_duration(text):
    """`90s`, `10m`, `1h30m`, or plain seconds."""
    m = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?", text.strip())
    if not text.strip() or not m or not any(m.groups()):
        raise argparse.ArgumentTypeError(f"`{text}` is not a duration like 90s, 10m or 1h30m")
    h, mi, sec = (int(g or 0) for g in m.groups())
    total = h * 3600 + mi * 60 + sec
    if total < 10:
        raise argparse.ArgumentTypeError("a soak lasts at least 10s")
    return total


def parse_mix(text):
    mix = {}
    for part in text.split(","):
        name, _, weight = part.partition("=")
        if name.strip() not in SOAK_MIX or not weight.strip().isdigit():
            raise argparse.ArgumentTypeError(f"--mix takes KIND=WEIGHT,... with KIND among {', '.join(SOAK_MIX)}")
        mix[name.strip()] = int(weight)
    return {k: mix.get(k, 0) for k in SOAK_MIX}


def intervals_of(duration):
    """Minutes, or tenths of a soak shorter than ten minutes; the last one takes the remainder."""
    step, count = (60, duration // 60) if duration >= 600 else (duration // 10, 10)
    return [step] * (count - 1) + [duration - step * (count - 1)]


class Sampler:
    """Samples the sesame process's RSS once a second while an interval runs."""

    def __init__(self, server):
        import threading

        self.server, self.samples, self.stop_flag = server, [], threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop_flag.is_set():
            try:
                self.samples.append(self.server.rss_kib())
            except (OSError, AttributeError):
                return
            self.stop_flag.wait(1)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *_):
        self.stop_flag.set()
        self.thread.join()


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds():
    """CPU time of the children waited for (the wrk processes; sesame is waited for only at its end)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


class Soak:
    def __init__(self, server, t, args, backend):
        self.server, self.t, self.args, self.backend = server, t, args, backend
        self.chains = []
        self.workdir = os.path.join(RESULTS, "soak")
        os.makedirs(self.workdir, exist_ok=True)
        cli = server.cli
        admin = cli("client", "add", "--name", "soak-admin", "--grant-type", "client_credentials", "--scope", "sesame:admin")
        self.admin_auth = basic(admin["client_id"], admin["client_secret"])
        # No limit that the soak could reach: the rate limiter still counts every use.
        self.api_key = cli("apikey", "generate", "soak", "--rate-limit", "1000000000")["key"]

    def post(self, path, auth, body):
        status, _, data = request(self.server.base, "POST", path, {"Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Basic {auth}"}, body)
        if status != 200:
            raise SystemExit(f"soak setup: POST {path} answered {status}: {data[:200]!r}")
        return json.loads(data)

    def new_chain(self):
        """A fresh refresh-token family: a code round on the SSO session, no login."""
        t = self.t
        _, h, _ = request(self.server.base, "GET", t["offline_authorize"], {"Cookie": t["cookie"]})
        code = urllib.parse.parse_qs(urllib.parse.urlparse(header(h, "location")).query)["code"][0]
        return self.post("/token", t["offline_auth"], form({"grant_type": "authorization_code", "code": code,
                                                               "redirect_uri": "http://127.0.0.1:9/cb", "code_verifier": VERIFIER}))["refresh_token"]

    def drive(self, label, seconds, rate, mix, connections, threads, env, chains):
        """One wrk process of soak.lua: the mix paced to `rate` (0: unthrottled), with its own report."""
        chains_in, report = os.path.join(self.workdir, f"{label}.chains"), os.path.join(self.workdir, f"{label}.report")
        with open(chains_in, "w") as f:
            f.write("".join(c + "\n" for c in chains))
        env = {**env, "MIX": ",".join(f"{k}={v}" for k, v in mix.items()), "RATE": str(rate), "THREADS": str(threads),
               "CHAINS_IN": chains_in, "REPORT": report}
        result = wrk(self.server.base, "/token", seconds, connections, "soak.lua", env, threads=threads)
        result.update({"sent": {}, "error_statuses": {}, "unexpected": {}, "chains": []})
        if os.path.exists(report):
            with open(report) as f:
                for line in f:
                    what, _, rest = line.rstrip("\n").partition(" ")
                    if what == "chain":
                        result["chains"].append(rest)
                        continue
                    key, _, value = rest.partition(" ")
                    if what == "bad":  # "bad COUNT REASON"
                        key, value = value, key
                    table = result[{"sent": "sent", "status": "error_statuses", "bad": "unexpected"}[what]]
                    table[key] = table.get(key, 0) + int(value)
        return result

    def run(self, label, seconds, rate):
        """One interval: the mix paced to `rate` requests/s, or unthrottled when `rate` is 0.

        Paced, the logins go through a wrk of their own (at their share of the rate), so that the
        latency of the rest is not their latency: at 1 in 100 requests, Argon2id logins would be
        the p99 of the mix by themselves. Unthrottled, one wrk sends the whole mix, so that the
        capacity is that of the mix in its proportions.
        """
        t = self.t
        # One chain per connection: a thread's pool empties only if all its connections refresh at once.
        while len(self.chains) < self.args.connections:
            self.chains.append(self.new_chain())
        # Access tokens live 15 minutes: every interval gets fresh ones.
        access = self.post("/token", t["cc"]["RS256"], form({"grant_type": "client_credentials"}))["access_token"]
        admin = self.post("/token", self.admin_auth, form({"grant_type": "client_credentials", "scope": "sesame:admin"}))["access_token"]
        env = {"CC_AUTH": t["cc"]["RS256"], "REFRESH_AUTH": t["offline_auth"], "RS_AUTH": t["rs_auth"], "ACCESS_TOKEN": access,
               "INTROSPECT_REFRESH": t["refresh"], "ADMIN_TOKEN": admin, "API_KEY": self.api_key,
               "LOGIN_BODY": t["login_body"], "LOGIN_COOKIE": t["login_cookie"]}
        mix = self.args.mix
        logins = {k: (v if k == "login" else 0) for k, v in mix.items()}
        split = rate > 0 and 0 < mix["login"] < sum(mix.values())
        main_mix = {k: (0 if k == "login" and split else v) for k, v in mix.items()}
        login_rate = round(rate * mix["login"] / sum(mix.values()), 2) if split else 0
        pid = self.server.proc.pid
        cpu_before, started, driver_before = cpu_seconds(pid), time.time(), children_cpu_seconds()
        login_result = {}
        with Sampler(self.server) as sampler:
            if split:
                import threading

                login_thread = threading.Thread(target=lambda: login_result.update(
                    self.drive(f"{label}-login", seconds, login_rate, logins, SOAK_LOGIN_CONNECTIONS, 1, env, [])))
                login_thread.start()
            result = self.drive(label, seconds, round(rate - login_rate, 2), main_mix, self.args.connections, SOAK_THREADS, env, self.chains)
            if split:
                login_thread.join()
        wall = time.time() - started
        driver_cpu = children_cpu_seconds() - driver_before
        self.chains = result.pop("chains")
        if login_result:
            login_result.pop("chains")
            result["logins"] = login_result
            for k in ["sent", "error_statuses", "unexpected"]:
                for key, n in login_result[k].items():
                    result[k][key] = result[k].get(key, 0) + n
            result["rps"] += login_result["rps"]
            result["requests"] += login_result["requests"]
            result["socket_errors"] += login_result["socket_errors"]
        alive = self.server.proc.poll() is None
        result.update({
            "label": label, "seconds": seconds, "target_rps": rate,
            "failures": sum(result["error_statuses"].values()) + sum(result["unexpected"].values()) + result["socket_errors"],
            "p50_ms": result["p50_ms"], "p99_ms": result["p99_ms"],  # of all but the logins when they have their own wrk
            "rss_kib": self.server.rss_kib() if alive else None,
            "rss_max_kib": max(sampler.samples) if sampler.samples else None,
            "sesame_cpu_pct": round(100 * (cpu_seconds(pid) - cpu_before) / wall, 1) if alive else None,
            "driver_cpu_pct": round(100 * driver_cpu / wall, 1),
            "loadavg_1m": float(open("/proc/loadavg").read().split()[0]),
            "alive": alive,
        })
        result["errors"] = result["failures"]
        result.pop("non_2xx_3xx", None)
        if self.backend == "embedded":
            db = os.path.join(RESULTS, "sesame-data", "sesame.db")
            result["sqlite_kib"] = sum(os.path.getsize(db + ext) // 1024 for ext in ["", "-wal", "-shm"] if os.path.exists(db + ext))
        return result


def soak(args):
    if args.backend == "postgres":
        db, redis = os.environ.get("SESAME_BENCH_DATABASE_URL"), os.environ.get("SESAME_BENCH_REDIS_URL")
        if not (db and redis):
            raise SystemExit("--backend postgres needs SESAME_BENCH_DATABASE_URL and SESAME_BENCH_REDIS_URL (bench/run sets them when both answer)")
        server, t = start_sesame(args.binary, "sesame", db, redis)
    else:
        server, t = start_sesame(args.binary, "sesame", "sqlite://sesame.db", None)
    plan = intervals_of(args.soak)
    report = {"mode": "soak", "backend": args.backend, "binary": os.path.relpath(args.binary, ROOT), "machine": os.uname().release,
              "cores": os.cpu_count(), "duration_s": args.soak, "intervals_s": plan, "connections": args.connections,
              "threads": SOAK_THREADS, "mix": args.mix, "load": args.load, "idle_rss_kib": server.idle_rss}
    failed = []
    try:
        run = Soak(server, t, args, args.backend)
        if args.rate:
            target = args.rate
            print(f"soak: {args.rate} req/s as asked (--rate), no capacity measurement", flush=True)
        else:
            capacity = run.run("capacity", args.capacity_seconds, 0)
            report["capacity"] = capacity
            target = max(1, round(capacity["rps"] * args.load))
            print(f"soak: the mix's capacity, {args.capacity_seconds} s unthrottled on {args.connections} connections: "
                  f"{capacity['rps']:.0f} req/s (p99 {capacity['p99_ms']:.1f} ms, {capacity['failures']} failures); "
                  f"soaking at {args.load:.0%} of it: {target} req/s", flush=True)
            if capacity["failures"] or not capacity["alive"]:
                failed.append(f"capacity run: {describe_failures(capacity)}")
        report["target_rps"] = target
        report["intervals"] = []
        elapsed = 0
        for i, seconds in enumerate(plan, 1):
            try:
                r = run.run(f"interval-{i:03d}", seconds, target)
            except (OSError, http.client.HTTPException, SystemExit):
                # Between intervals (fresh tokens, new chains): a dead sesame is a finding, not a crash.
                if server.proc.poll() is None:
                    raise
                failed.append(f"sesame died (exit status {server.proc.returncode}) before {elapsed} s; see {os.path.relpath(server.log.name, ROOT)}")
                break
            r["from_s"], r["to_s"] = elapsed, elapsed + seconds
            elapsed += seconds
            report["intervals"].append(r)
            logins = f"  logins p99 {r['logins']['p99_ms'] or 0:>7.1f} ms" if "logins" in r else ""
            print(f"  {r['from_s']:>5}-{r['to_s']:<5}s {r['rps']:>8.0f} req/s  p50 {r['p50_ms'] or 0:>6.2f} ms  p99 {r['p99_ms'] or 0:>7.2f} ms{logins}  "
                  f"failures {r['failures']:>3}  RSS {mib(r['rss_kib'])} MiB", flush=True)
            if r["failures"]:
                failed.append(f"{r['from_s']}-{r['to_s']} s: {describe_failures(r)}")
            if not r["alive"]:
                failed.append(f"sesame died (exit status {server.proc.returncode}); see {os.path.relpath(server.log.name, ROOT)}")
                break
        report["peak_rss_kib"] = server.rss_kib("VmHWM") if server.proc.poll() is None else None
    finally:
        server.stop()
    report["failed"] = failed
    ivs = report.get("intervals", [])
    if ivs:
        report["first_vs_last"] = {"rss_kib": [ivs[0]["rss_kib"], ivs[-1]["rss_kib"]], "p99_ms": [ivs[0]["p99_ms"], ivs[-1]["p99_ms"]],
                                   "rps": [ivs[0]["rps"], ivs[-1]["rps"]]}
    with open(os.path.join(RESULTS, "soak.json"), "w") as f:
        json.dump(report, f, indent=2)
    print_soak(report)
    print(f"\nJSON: {os.path.relpath(os.path.join(RESULTS, 'soak.json'), ROOT)}")
    if failed:
        print("soak FAILED:\n  " + "\n  ".join(failed), file=sys.stderr)
        sys.exit(1)
    print("soak: no error answers, sesame alive throughout")


def mib(kib):
    return f"{kib / 1024:.1f}" if kib is not None else "-"


def describe_failures(r):
    parts = [f"{n} x HTTP {code}" for code, n in sorted(r["error_statuses"].items())]
    parts += [f"{n} x {why}" for why, n in r["unexpected"].items()]
    if r["socket_errors"]:
        parts.append(f"{r['socket_errors']} socket errors")
    return ", ".join(parts) or "no failures"


def print_soak(report):
    ivs = report.get("intervals", [])
    step = "minute" if report["duration_s"] >= 600 else f"{report['intervals_s'][0]} s"
    how = f" ({report['load']:.0%} of the measured {report['capacity']['rps']:.0f} req/s)" if "capacity" in report else " (--rate)"
    print(f"\nsoak on {report['backend']}: {report['duration_s']} s at {report.get('target_rps', '-')} req/s{how}")
    print(f"{report['cores']} cores, {report['connections']} connections, mix {', '.join(f'{k} {v}' for k, v in report['mix'].items() if v)}; per {step}\n")
    db = report["backend"] == "embedded"
    print("p50 and p99: every request but the logins; the logins (own wrk) have their own columns.\n")
    print("| interval (s) | req/s | p50 ms | p99 ms | logins/s | login p50 ms | login p99 ms | errors | sesame RSS MiB | sesame CPU % | wrk CPU % | load avg"
          + (" | SQLite MiB |" if db else " |"))
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if db else ""))
    for r in ivs:
        lg = r.get("logins")
        logins = f"{lg['rps']:.1f} | {lg['p50_ms'] or 0:.1f} | {lg['p99_ms'] or 0:.1f}" if lg else "- | - | -"
        print(f"| {r['from_s']}-{r['to_s']} | {r['rps']:.0f} | {r['p50_ms'] or 0:.2f} | {r['p99_ms'] or 0:.2f} | {logins} | {r['failures']} | {mib(r['rss_kib'])} | "
              f"{r['sesame_cpu_pct'] if r['sesame_cpu_pct'] is not None else '-'} | {r['driver_cpu_pct']} | {r['loadavg_1m']:.2f} |" + (f" {mib(r.get('sqlite_kib'))} |" if db else ""))
    sent = {}
    for r in ivs:
        for k, n in r["sent"].items():
            sent[k] = sent.get(k, 0) + n
    total = sum(n for k, n in sent.items() if k != "refresh_skipped")
    if total:
        print("\nsent: " + ", ".join(f"{k} {n} ({n / total:.1%})" for k, n in sorted(sent.items()) if k != "refresh_skipped")
              + (f"; {sent['refresh_skipped']} refreshes sent as client_credentials (no chain free)" if sent.get("refresh_skipped") else ""))
    if ivs:
        first, last = ivs[0], ivs[-1]
        print(f"first vs last {step}: RSS {mib(first['rss_kib'])} -> {mib(last['rss_kib'])} MiB, p99 {first['p99_ms'] or 0:.2f} -> {last['p99_ms'] or 0:.2f} ms, "
              f"{first['rps']:.0f} -> {last['rps']:.0f} req/s; RSS idle {mib(report['idle_rss_kib'])} MiB, peak {mib(report.get('peak_rss_kib'))} MiB")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=5, help="seconds per run")
    parser.add_argument("--runs", type=int, default=3, help="runs per scenario (the median is reported)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--smoke", action="store_true", help="a very short run, to check that everything starts")
    parser.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "sesame"))
    soak_args = parser.add_argument_group("soak", "--soak DURATION: a mixed load on sesame alone (no peer) at a fraction of its measured capacity")
    soak_args.add_argument("--soak", type=parse_duration, metavar="DURATION", help="e.g. 90s, 10m, 1h")
    soak_args.add_argument("--backend", choices=["embedded", "postgres"], default="embedded",
                           help="postgres: on SESAME_BENCH_DATABASE_URL and SESAME_BENCH_REDIS_URL")
    soak_args.add_argument("--load", type=float, default=0.8, help="fraction of the measured capacity (default 0.8)")
    soak_args.add_argument("--capacity-seconds", type=int, default=15, help="length of the unthrottled capacity measurement")
    soak_args.add_argument("--rate", type=int, help="soak at this many requests/s instead of measuring the capacity")
    soak_args.add_argument("--mix", type=parse_mix, default=dict(SOAK_MIX), help="weights, e.g. " + ",".join(f"{k}={v}" for k, v in SOAK_MIX.items()))
    args = parser.parse_args()
    if args.smoke:
        args.duration, args.runs, args.connections = 1, 1, 4
    global RESULTS
    RESULTS = os.path.join(BENCH, "results", time.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(RESULTS, exist_ok=True)
    if args.soak:
        return soak(args)

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
