"""The data-scale run (`bench/run --data-scale`): the scenarios that touch stored data, on an empty
database and on one preloaded with a million refresh tokens (in families), a million API keys,
100,000 clients (and as many users) and ten million audit events (benchlib/preload.py).

Two sesame processes run side by side, one on each database (on PostgreSQL: two schemas, one
Redis database; on SQLite: two files), set up alike by the benchmark before the preload; the runs
alternate between them (scenario by scenario, run by run), so that the machine's changing load
falls on both alike. The figure is the ratio of the medians."""

import argparse
import json
import os
import statistics
import subprocess
import time

from . import common, preload
from .common import ROOT
from .scenarios import measure
from .sesame import start_sesame

ROWS = [
    "client_credentials ES256",
    "code + PKCE round (requests/s; 2 per round)",
    "refresh_token rotation (RS256)",
    "introspect JWT",
    "introspect refresh token",
    "introspect API key",
    "API key test (admin API)",
    "API key exchanged for a JWT (RS256)",
]


def psql(sql):
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qc", sql], check=True, capture_output=True)


def data_scale(args):
    n = preload.counts(args.scale)
    report = {"mode": "data-scale", "machine": os.uname().release, "cores": os.cpu_count(), "duration_s": args.duration, "runs": args.runs,
              "connections": args.connections, "binary": os.path.relpath(args.binary, ROOT), "rows": n, "backends": {}}
    backends = args.scale_backends.split(",")
    if "postgres" in backends:
        schema, db, redis = (os.environ.get(k) for k in ["SESAME_BENCH_SCHEMA", "SESAME_BENCH_DATABASE_URL", "SESAME_BENCH_REDIS_URL"])
        if not (schema and db and redis):
            raise SystemExit("--data-scale needs PostgreSQL and Redis (bench/run sets SESAME_BENCH_SCHEMA, _DATABASE_URL and _REDIS_URL when both answer)")
        empty = f"{schema}_empty"
        psql(f"CREATE SCHEMA {empty}")
        try:
            report["backends"]["postgres"] = compare(args, n, "postgres", db.replace(schema, empty), db, redis,
                                                     lambda: preload.postgres(schema, n), lambda: preload.postgres_sizes(schema))
            report["backends"]["postgres"]["explain"] = preload.postgres_explain(schema, n["refresh_families"] // 2)
        finally:
            psql(f"DROP SCHEMA {empty} CASCADE")
    if "embedded" in backends:
        loaded_file = lambda: os.path.join(common.RESULTS, "scale-embedded-loaded-data", "sesame.db")
        report["backends"]["embedded"] = compare(args, n, "embedded", "sqlite://sesame.db", "sqlite://sesame.db", None,
                                                 lambda: preload.sqlite(loaded_file(), n), lambda: preload.sqlite_sizes(loaded_file()))
    with open(os.path.join(common.RESULTS, "data-scale.json"), "w") as f:
        json.dump(report, f, indent=2)
    print_scale(report)
    print(f"\nJSON: {os.path.relpath(os.path.join(common.RESULTS, 'data-scale.json'), ROOT)}")


def compare(args, n, backend, empty_url, loaded_url, redis_url, load, sizes):
    print(f"data scale on {backend}:", flush=True)
    empty, te = start_sesame(args.binary, f"scale-{backend}-empty", empty_url, redis_url)
    loaded, tl = start_sesame(args.binary, f"scale-{backend}-loaded", loaded_url, redis_url)
    out = {}
    try:
        started = time.time()
        out["preload_seconds"] = load()
        out["preload_total_seconds"] = round(time.time() - started, 1)
        out["sizes"] = sizes()
        total = sum(v["bytes"] or 0 for k, v in out["sizes"].items() if k != "(file)")
        out["database_bytes"] = out["sizes"].get("(file)", {}).get("bytes") or total
        print(f"  preloaded in {out['preload_total_seconds']} s; database {out['database_bytes'] / 2**20:.0f} MiB", flush=True)
        one = argparse.Namespace(**{**vars(args), "runs": 1})
        with_stores = backend == "postgres"
        runs = {"empty": {}, "loaded": {}}
        only = [name for name in ROWS if not args.only or any(part in name for part in args.only)]
        for _ in range(args.runs):
            for name in only:
                for label, server, t in [("empty", empty, te), ("loaded", loaded, tl)]:
                    r = measure(server, t, one, [name], with_stores)[name]
                    runs[label].setdefault(name, []).append(r)
        out["results"] = {label: {name: summary(rs) for name, rs in by_name.items()} for label, by_name in runs.items()}
        out["runs"] = runs
    finally:
        empty.stop()
        loaded.stop()
    return out


def summary(runs):
    median = lambda key: statistics.median(r[key] or 0 for r in runs)
    out = {"rps": median("rps"), "p50_ms": median("p50_ms"), "p99_ms": median("p99_ms"), "errors": sum(r["errors"] for r in runs)}
    if runs and "cpu_us_per_request" in runs[0]:
        out["cpu_us_per_request"] = {k: statistics.median(r["cpu_us_per_request"].get(k, 0) for r in runs) for k in runs[0]["cpu_us_per_request"]}
    return out


def print_scale(report):
    n = report["rows"]
    print(f"\ndata scale: {n['refresh_families'] * preload.TOKENS_PER_FAMILY} refresh tokens in {n['refresh_families']} families, "
          f"{n['api_keys']} API keys, {n['clients']} clients, {n['users']} users, {n['audit_events']} audit events; "
          f"median of {report['runs']} x {report['duration_s']} s, runs alternating between the two databases\n")
    for backend, b in report["backends"].items():
        print(f"{backend}: preload {b['preload_total_seconds']} s ({', '.join(f'{k} {v} s' for k, v in b['preload_seconds'].items())}); "
              f"database {b['database_bytes'] / 2**20:.0f} MiB\n")
        print("| scenario | empty req/s | p99 ms | preloaded req/s | p99 ms | preloaded / empty | errors |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        e, l = b["results"]["empty"], b["results"]["loaded"]
        for name in ROWS:
            if name in e and name in l:
                ratio = f"{l[name]['rps'] / e[name]['rps']:.0%}" if e[name]["rps"] else "-"
                print(f"| {name} | {e[name]['rps']:.0f} | {e[name]['p99_ms']:.2f} | {l[name]['rps']:.0f} | {l[name]['p99_ms']:.2f} | {ratio} | "
                      f"{e[name]['errors'] + l[name]['errors']} |")
        print("\n| table | rows | MiB | bytes per row |")
        print("|---|---:|---:|---:|")
        for table, v in sorted(b["sizes"].items(), key=lambda kv: -(kv[1]["bytes"] or 0)):
            if v["bytes"] and (v["rows"] is None or v["rows"] >= 1000):
                per_row = f"{v['bytes'] / v['rows']:.0f}" if v["rows"] else "-"
                print(f"| {table} | {v['rows'] if v['rows'] is not None else '-'} | {v['bytes'] / 2**20:.1f} | {per_row} |")
        for name, plan in b.get("explain", {}).items():
            print(f"\nEXPLAIN ANALYZE, {name}:\n    " + "\n    ".join(plan))
        print()
