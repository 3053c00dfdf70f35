"""The soak: a mixed load on sesame alone at a fraction of its measured capacity, reported per interval."""

import argparse
import http.client
import json
import os
import re
import sys
import time

from . import common
from .common import ROOT, children_cpu_seconds, cpu_seconds, form, mib, request, wrk
from .sesame import start_sesame

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


class Soak:
    def __init__(self, server, t, args, backend):
        self.server, self.t, self.args, self.backend = server, t, args, backend
        self.chains = []
        self.workdir = os.path.join(common.RESULTS, "soak")
        os.makedirs(self.workdir, exist_ok=True)

    def post(self, path, auth, body):
        status, _, data = request(self.server.base, "POST", path, {"Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Basic {auth}"}, body)
        if status != 200:
            raise SystemExit(f"soak setup: POST {path} answered {status}: {data[:200]!r}")
        return json.loads(data)

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
        if len(self.chains) < self.args.connections:
            self.chains += t["new_chains"](self.args.connections - len(self.chains))
        # Access tokens live 15 minutes: every interval gets fresh ones.
        access = self.post("/token", t["cc"]["RS256"], form({"grant_type": "client_credentials"}))["access_token"]
        admin = t["admin_token"]()
        env = {"CC_AUTH": t["cc"]["RS256"], "REFRESH_AUTH": t["offline_auth"], "RS_AUTH": t["rs_auth"], "ACCESS_TOKEN": access,
               "INTROSPECT_REFRESH": t["refresh"], "ADMIN_TOKEN": admin, "API_KEY": t["api_key"],
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
            db = os.path.join(common.RESULTS, "sesame-data", "sesame.db")
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
    with open(os.path.join(common.RESULTS, "soak.json"), "w") as f:
        json.dump(report, f, indent=2)
    print_soak(report)
    print(f"\nJSON: {os.path.relpath(os.path.join(common.RESULTS, 'soak.json'), ROOT)}")
    if failed:
        print("soak FAILED:\n  " + "\n  ".join(failed), file=sys.stderr)
        sys.exit(1)
    print("soak: no error answers, sesame alive throughout")


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
