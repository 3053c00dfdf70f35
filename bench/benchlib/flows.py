"""What one request of each flow costs the stores (`bench/run --flows`), for the capacity model
(docs/capacity.md): Redis commands (from MONITOR, on the benchmark's Redis database only) and
PostgreSQL statements and transactions (sesame's connections log their statements: the URL
sets `log_statement=all` for them alone; the server's log is read back, by backend pid). Each
flow runs FLOW_REPEATS times, one request after another, after a few warm-up rounds (caches
filled); the counts are per flow. Then what a session, an authorization code and a pending
authorization take in Redis (MEMORY USAGE) and the average row of each table (pg_column_size).
"""

import json
import os
import re
import subprocess
import threading
import time
import urllib.parse

from . import common
from .common import CHALLENGE, PASSWORD, ROOT, VERIFIER, cookies_from, form, header, request
from .mtls import certificates
from .scenarios import EXCHANGE
from .sesame import start_sesame
from .usage import postgres_backends

FLOW_REPEATS = 20
WARM_UP = 3
PG_LOG = "/var/log/postgresql"


class RedisMonitor:
    """The commands sent to Redis database `db` while it runs (MONITOR sees every database)."""

    def __init__(self, db):
        self.db, self.commands = db, []
        self.proc = subprocess.Popen(["redis-cli", "-h", "127.0.0.1", "monitor"], stdout=subprocess.PIPE, text=True)
        self.thread = threading.Thread(target=self.read, daemon=True)
        self.thread.start()
        self.recording = False

    def read(self):
        for line in self.proc.stdout:
            m = re.match(rf'[\d.]+ \[{self.db} [^\]]+\] "(\w+)"(?: "([^"]*)")?', line)
            if m and self.recording:
                key = re.sub(r":[A-Za-z0-9_\-]{16,}.*$|:\d+$", ":…", m.group(2) or "")
                self.commands.append((m.group(1).upper(), key))

    def take(self):
        time.sleep(0.3)
        out, self.commands = self.commands, []
        return out

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def pg_log_file():
    files = sorted((os.path.join(PG_LOG, f) for f in os.listdir(PG_LOG) if f.endswith(".log")), key=os.path.getmtime)
    return files[-1] if files else None


def pg_statements(log, offset, pids):
    """sesame's statements logged since `offset` in the server's log: (kind, text) per statement,
    and the transactions (an explicit BEGIN, or a statement outside one)."""
    with open(log, errors="replace") as f:
        f.seek(offset)
        text = f.read()
    statements, transactions, open_tx = [], 0, set()
    for m in re.finditer(r"\[(\d+)\] [^\n]*?LOG:  (?:statement|execute [^:]*): (.*)", text):
        pid, sql = int(m.group(1)), m.group(2).strip()
        if pid not in pids:
            continue
        verb = sql.split()[0].upper() if sql else ""
        if verb == "BEGIN":
            open_tx.add(pid)
            transactions += 1
        elif verb in ("COMMIT", "ROLLBACK"):
            open_tx.discard(pid)
        else:
            if pid not in open_tx:
                transactions += 1
            statements.append((verb, re.sub(r"\s+", " ", sql)[:90]))
    return statements, transactions


# What every node polls on its own, about once a second, whatever the traffic: left out of the flows.
BACKGROUND = ["FROM signing_key", "FROM logout_deliveri", "apikey:usage:", "retention:"]


def summarise(redis_commands, statements, transactions, repeats):
    per = lambda n: round(n / repeats, 2)
    background = lambda text: any(b in text for b in BACKGROUND)
    redis_commands = [(c, k) for c, k in redis_commands if not background(k)]
    by_command = {}
    round_trips, in_multi = 0, False
    for command, key in redis_commands:
        by_command[f"{command} {key}".strip()] = by_command.get(f"{command} {key}".strip(), 0) + 1
        # MULTI ... EXEC goes as one pipeline: one round trip.
        if command == "MULTI":
            in_multi = True
            round_trips += 1
        elif command == "EXEC":
            in_multi = False
        elif not in_multi:
            round_trips += 1
    kept = [(verb, sql) for verb, sql in statements if not background(sql)]
    transactions -= len(statements) - len(kept)  # the background ones each ran alone
    by_statement = {}
    for verb, sql in kept:
        by_statement[sql] = by_statement.get(sql, 0) + 1
    writes = sum(1 for verb, _ in kept if verb in ("INSERT", "UPDATE", "DELETE"))
    return {"redis_commands": per(len(redis_commands)), "redis_round_trips": per(round_trips), "redis": {k: per(v) for k, v in sorted(by_command.items())},
            "pg_transactions": per(transactions), "pg_statements": per(len(kept)), "pg_writes": per(writes),
            "pg": {k: per(v) for k, v in sorted(by_statement.items(), key=lambda kv: -kv[1])}}


def sign_in(base, authorize):
    """A whole sign-in from the authorization request to the code: (session cookie, code)."""
    _, h, _ = request(base, "GET", authorize)
    browser = f"sesame_browser={cookies_from(h, {})['sesame_browser']}"
    _, _, page = request(base, "GET", header(h, "location"), {"Cookie": browser})
    hidden = lambda n: re.search(rf'name="{n}" value="([^"]*)"', page.decode()).group(1)
    _, h, _ = request(base, "POST", "/login", {"Content-Type": "application/x-www-form-urlencoded", "Cookie": browser},
                      form({"req": hidden("req"), "csrf": hidden("csrf"), "username": "alice", "password": PASSWORD}))
    session = f"sesame_session={cookies_from(h, {})['sesame_session']}"
    _, h, _ = request(base, "GET", header(h, "location"), {"Cookie": f"{session}; {browser}"})
    return session, code_of(h)


def code_of(headers):
    return urllib.parse.parse_qs(urllib.parse.urlparse(header(headers, "location")).query)["code"][0]


def flows_run(args):
    db, redis = os.environ.get("SESAME_BENCH_DATABASE_URL"), os.environ.get("SESAME_BENCH_REDIS_URL")
    if not (db and redis):
        raise SystemExit("--flows needs PostgreSQL and Redis (bench/run sets SESAME_BENCH_DATABASE_URL and SESAME_BENCH_REDIS_URL)")
    log = pg_log_file()
    if not log or not os.access(log, os.R_OK):
        raise SystemExit(f"--flows reads PostgreSQL's log in {PG_LOG}; it is not readable here")
    redis_db = int(redis.rsplit("/", 1)[1])
    mtls = certificates(os.path.join(common.RESULTS, "mtls"))
    server, t = start_sesame(args.binary, "flows", db + "%20-c%20log_statement%3Dall", redis, mtls)
    base, auth = server.base, lambda a: {"Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Basic {a}"}
    web_query = urllib.parse.urlparse(t["authorize"]).query
    web_id = urllib.parse.parse_qs(web_query)["client_id"][0]
    chains = t["new_chains"](WARM_UP + FLOW_REPEATS)
    access = json.loads(request(base, "POST", "/token", auth(t["cc"]["RS256"]), form({"grant_type": "client_credentials"}))[2])["access_token"]
    admin = t["admin_token"]()
    proofs_prefix = os.path.join(common.RESULTS, "flow-proofs-")
    subprocess.run(["node", os.path.join(common.BENCH, "dpop_proofs.mjs"), t["token_endpoint"], str(WARM_UP + FLOW_REPEATS), "1", proofs_prefix], check=True)
    proofs = open(proofs_prefix + "0.txt").read().split()
    post = lambda path, headers, body: request(base, "POST", path, headers, body)

    def code_round(i):
        _, h, _ = request(base, "GET", t["authorize"], {"Cookie": t["cookie"]})
        return post("/token", auth(t["web_auth"]), form({"grant_type": "authorization_code", "code": code_of(h), "redirect_uri": "http://127.0.0.1:9/cb", "code_verifier": VERIFIER}))

    def login(i):
        query = form({"response_type": "code", "client_id": web_id, "redirect_uri": "http://127.0.0.1:9/cb", "scope": "openid",
                      "code_challenge": CHALLENGE, "code_challenge_method": "S256", "state": f"s{i}"})
        _, code = sign_in(base, f"/authorize?{query}")
        return post("/token", auth(t["web_auth"]), form({"grant_type": "authorization_code", "code": code, "redirect_uri": "http://127.0.0.1:9/cb", "code_verifier": VERIFIER}))

    mtls_t = t["mtls"]
    flows = {
        "client_credentials RS256": lambda i: post("/token", auth(t["cc"]["RS256"]), form({"grant_type": "client_credentials"})),
        "client_credentials ES256 + DPoP": lambda i: post("/token", {**auth(t["cc"]["ES256"]), "DPoP": proofs[i]}, form({"grant_type": "client_credentials"})),
        "client_credentials ES256 + mTLS (proxy header)": lambda i: post("/token", {"Content-Type": "application/x-www-form-urlencoded", mtls_t["header"]: mtls_t["escaped"]},
                                                                          form({"grant_type": "client_credentials", "client_id": mtls_t["client_id"]})),
        "refresh_token rotation (RS256)": lambda i: post("/token", auth(t["offline_auth"]), form({"grant_type": "refresh_token", "refresh_token": chains[i]})),
        "code + PKCE round (2 requests)": code_round,
        "sign-in: authorize, sign-in page, password, resume, token (6 requests)": login,
        "introspect JWT": lambda i: post("/introspect", auth(t["rs_auth"]), form({"token": access})),
        "introspect refresh token": lambda i: post("/introspect", auth(t["offline_auth"]), form({"token": t["refresh"]})),
        "introspect API key": lambda i: post("/introspect", auth(t["rs_auth"]), form({"token": t["api_key"]})),
        "API key test (admin API)": lambda i: post("/admin/api-keys/test", {"Content-Type": "application/json", "Authorization": f"Bearer {admin}"}, json.dumps({"key": t["api_key"]})),
        "API key exchanged for a JWT (RS256)": lambda i: post("/token", {"Content-Type": "application/x-www-form-urlencoded"}, form({**EXCHANGE, "subject_token": t["api_key"]})),
    }
    monitor = RedisMonitor(redis_db)
    report = {"mode": "flows", "repeats": FLOW_REPEATS, "flows": {}}
    try:
        time.sleep(0.5)
        for name, flow in flows.items():
            for i in range(WARM_UP):
                flow(i)
            pids = set(postgres_backends(server.proc.pid))
            offset = os.path.getsize(log)
            monitor.commands, monitor.recording = [], True
            for i in range(WARM_UP, WARM_UP + FLOW_REPEATS):
                status, _, body = flow(i)
                if status >= 400:
                    raise SystemExit(f"flow {name}: {status} {body[:200]!r}")
            commands = monitor.take()
            monitor.recording = False
            pids |= set(postgres_backends(server.proc.pid))
            statements, transactions = pg_statements(log, offset, pids)
            report["flows"][name] = summarise(commands, statements, transactions, FLOW_REPEATS)
            f = report["flows"][name]
            print(f"  {name:<72} Redis {f['redis_commands']:>5} ({f['redis_round_trips']} round trips)  PG transactions {f['pg_transactions']:>5}  statements {f['pg_statements']:>5}  writes {f['pg_writes']:>5}", flush=True)
        report["redis_bytes"] = redis_sizes(redis_db, base, t)
        report["pg_row_bytes"] = pg_row_sizes(os.environ.get("SESAME_BENCH_SCHEMA"))
    finally:
        monitor.stop()
        server.stop()
    with open(os.path.join(common.RESULTS, "flows.json"), "w") as f:
        json.dump(report, f, indent=2)
    print_flows(report)
    print(f"\nJSON: {os.path.relpath(os.path.join(common.RESULTS, 'flows.json'), ROOT)}")


def redis_cli(db, *args):
    return subprocess.run(["redis-cli", "-h", "127.0.0.1", "-n", str(db), *args], capture_output=True, text=True, check=True).stdout.strip()


def redis_sizes(db, base, t):
    """MEMORY USAGE (bytes, the key and its value with Redis's overhead) per kind of key."""
    # An authorization code and a pending authorization, caught between their two steps.
    request(base, "GET", t["authorize"], {"Cookie": t["cookie"]})
    query = urllib.parse.urlparse(t["authorize"]).query
    request(base, "GET", f"/authorize?{query}&state=pending")
    sizes = {}
    for key in redis_cli(db, "--scan").split():
        kind = re.sub(r":[A-Za-z0-9_\-]{16,}.*$|:\d+$", ":…", key)
        usage = redis_cli(db, "memory", "usage", key)
        if usage.isdigit():
            sizes.setdefault(kind, []).append(int(usage))
    return {kind: {"keys": len(v), "bytes_each": round(sum(v) / len(v))} for kind, v in sorted(sizes.items())}


def pg_row_sizes(schema):
    """The average stored row of the tables a sign-in and the token flows write (pg_column_size:
    the tuple's data, without page, index or TOAST-pointer overhead)."""
    out = {}
    for table in ["sso_sessions", "sso_session_clients", "refresh_families", "refresh_tokens", "refresh_family_access_tokens", "api_keys", "audit_events", "clients", "users"]:
        row = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qtAc",
                              f"SET search_path TO {schema}; SELECT count(*), coalesce(round(avg(pg_column_size(t.*))), 0) FROM {table} t"],
                             capture_output=True, text=True).stdout.split()
        if row:
            count, avg = row[-1].split("|")
            out[table] = {"rows": int(count), "avg_row_bytes": int(float(avg))}
    return out


def print_flows(report):
    print(f"\nper flow (mean of {report['repeats']}, after warm-up):\n")
    print("| flow | Redis commands | Redis round trips | PostgreSQL transactions | statements | of which writes |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, f in report["flows"].items():
        print(f"| {name} | {f['redis_commands']:g} | {f['redis_round_trips']:g} | {f['pg_transactions']:g} | {f['pg_statements']:g} | {f['pg_writes']:g} |")
    for name, f in report["flows"].items():
        print(f"\n{name}:\n  Redis: " + ", ".join(f"{k} x{v:g}" for k, v in f["redis"].items()))
        print("  PostgreSQL: " + "; ".join(f"{k} x{v:g}" for k, v in f["pg"].items()))
    print("\nRedis MEMORY USAGE per key:\n")
    for kind, v in report["redis_bytes"].items():
        print(f"  {kind}: {v['bytes_each']} bytes ({v['keys']} keys)")
    print("\nPostgreSQL average row (pg_column_size):\n")
    for table, v in report["pg_row_bytes"].items():
        print(f"  {table}: {v['avg_row_bytes']} bytes ({v['rows']} rows)")
