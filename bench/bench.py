#!/usr/bin/env python3
"""sesame's load benchmark, side by side with node-oidc-provider, in one run.

Starts sesame on the embedded default (and on PostgreSQL + Redis when SESAME_BENCH_DATABASE_URL
and SESAME_BENCH_REDIS_URL are set), starts the peer, drives each with wrk at the same
concurrency, and prints one table (median of several runs) plus JSON in bench/results/.
With --soak DURATION: sesame alone under a mixed load at 80% of its measured capacity, reported
per minute (see bench/README.md). With --data-scale: on PostgreSQL + Redis, the scenarios on the
empty database and again after preloading millions of rows (benchlib/data_scale.py). With --flows:
the Redis commands and PostgreSQL statements of one request of each flow (benchlib/flows.py).
"""

import argparse
import json
import os
import subprocess
import sys
import time

from benchlib import common
from benchlib.common import BENCH, ROOT
from benchlib.mtls import certificates
from benchlib.peer import start_peer
from benchlib.scenarios import ROWS, measure, token_p99_under_login_flood
from benchlib.sesame import start_sesame
from benchlib.soak import SOAK_MIX, parse_duration, parse_mix, soak

PG = "sesame (PostgreSQL + Redis)"
PEER = "node-oidc-provider"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=5, help="seconds per run")
    parser.add_argument("--runs", type=int, default=3, help="runs per scenario (the median is reported)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--smoke", action="store_true", help="a very short run, to check that everything starts")
    parser.add_argument("--binary", default=os.path.join(os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"), "release", "sesame"))
    parser.add_argument("--only", type=lambda s: [x.strip() for x in s.split(",") if x.strip()],
                        help="comma-separated parts of scenario names: run only the scenarios whose name contains one")
    parser.add_argument("--targets", default="embedded,postgres,peer", help="which of embedded, postgres, peer to measure")
    scale_args = parser.add_argument_group("data scale", "--data-scale: on PostgreSQL + Redis (and SQLite), empty and then preloaded")
    scale_args.add_argument("--data-scale", action="store_true")
    scale_args.add_argument("--scale", type=float, default=1.0, help="fraction of the full preload (1: a million refresh tokens ...)")
    scale_args.add_argument("--scale-backends", default="postgres,embedded", help="which of postgres, embedded to preload")
    parser.add_argument("--flows", action="store_true", help="count the Redis commands and PostgreSQL statements of each flow (PostgreSQL + Redis)")
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
    common.RESULTS = os.path.join(BENCH, "results", time.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(common.RESULTS, exist_ok=True)
    if args.soak:
        return soak(args)
    if args.data_scale:
        from benchlib.data_scale import data_scale
        return data_scale(args)
    if args.flows:
        from benchlib.flows import flows_run
        return flows_run(args)

    wanted = set(args.targets.split(","))
    only = [name for name in ROWS if any(part in name for part in args.only)] if args.only else None
    mtls = certificates(os.path.join(common.RESULTS, "mtls"))
    targets, report = {}, {"machine": os.uname().release, "cores": os.cpu_count(), "duration_s": args.duration, "runs": args.runs,
                           "connections": args.connections, "binary": os.path.relpath(args.binary, ROOT)}
    if "embedded" in wanted:
        sesame, t = start_sesame(args.binary, "sesame", "sqlite://sesame.db", None, mtls)
        idle_rss = sesame.idle_rss
        ceiling_bin = os.path.join(os.path.dirname(args.binary), "sign-ceiling")
        ceiling = json.loads(subprocess.run([ceiling_bin, str(max(1, args.duration // 2))], capture_output=True, text=True, check=True).stdout)
        print(f"signing ceiling (all cores, parsed key): {ceiling}", flush=True)
        targets["sesame"] = measure(sesame, t, args, only)
        if not only or "password logins" in only:
            report["token_under_login_flood"] = token_p99_under_login_flood(sesame, t, args)
        report.update({"signing_ceiling": ceiling, "sesame_rss_kib": {"idle": idle_rss, "peak": sesame.rss_kib("VmHWM")}})
        sesame.stop()

    db, redis = os.environ.get("SESAME_BENCH_DATABASE_URL"), os.environ.get("SESAME_BENCH_REDIS_URL")
    if db and redis and "postgres" in wanted:
        pg, t2 = start_sesame(args.binary, "sesame-pg", db, redis, mtls)
        targets[PG] = measure(pg, t2, args, only, with_stores=True)
        pg.stop()

    if "peer" in wanted:
        peer, tp = start_peer(mtls)
        targets[PEER] = measure(peer, tp, args, only)
        report["peer_peak_rss_kib"] = peer.rss_kib("VmHWM")
        peer.stop()

    report["results"] = targets
    with open(os.path.join(common.RESULTS, "results.json"), "w") as f:
        json.dump(report, f, indent=2)
    print_table(report)
    print(f"\nJSON: {os.path.relpath(os.path.join(common.RESULTS, 'results.json'), ROOT)}")
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
    s, p, pg = res.get("sesame", {}), res.get(PEER, {}), res.get(PG, {})
    print(f"\n{report['cores']} cores, {report['connections']} connections, median of {report['runs']} x {report['duration_s']} s\n")
    print("| scenario | sesame req/s | p50 ms | p99 ms | errors | sesame PG+Redis req/s | PG+Redis p99 ms | PG+Redis errors | peer req/s | peer p99 ms | sesame/peer |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    cell = lambda r, key, fmt: format(r[key], fmt) if r else "-"
    for name in ROWS:
        r, g, peer = s.get(name), pg.get(name), p.get(name)
        if not (r or g or peer):
            continue
        ratio = f"{r['rps'] / peer['rps']:.1f}x" if r and peer and peer["rps"] else "-"
        print(f"| {name} | {cell(r, 'rps', '.0f')} | {cell(r, 'p50_ms', '.2f')} | {cell(r, 'p99_ms', '.2f')} | {cell(r, 'errors', 'd')} | "
              f"{cell(g, 'rps', '.0f')} | {cell(g, 'p99_ms', '.2f')} | {cell(g, 'errors', 'd')} | {cell(peer, 'rps', '.0f')} | {cell(peer, 'p99_ms', '.2f')} | {ratio} |")
    print_cpu(s, pg)
    if "signing_ceiling" in report and "client_credentials RS256" in s:
        ceiling = report["signing_ceiling"]["RS256"]
        print(f"\nclient_credentials RS256 vs the signing ceiling ({ceiling:.0f}/s): {s['client_credentials RS256']['rps'] / ceiling:.0%}")
    if "token_under_login_flood" in report:
        f = report["token_under_login_flood"]
        print(f"token endpoint while logins flood: {f['rps']:.0f} req/s, p99 {f['p99_ms']:.2f} ms")
    if "sesame_rss_kib" in report:
        rss = report["sesame_rss_kib"]
        peer_rss = f"; peer peak {report['peer_peak_rss_kib'] / 1024:.1f} MiB" if "peer_peak_rss_kib" in report else ""
        print(f"sesame RSS: idle {rss['idle'] / 1024:.1f} MiB, peak {rss['peak'] / 1024:.1f} MiB{peer_rss}")


def print_cpu(s, pg):
    """CPU time per request (microseconds): the capacity model's inputs."""
    print("\nCPU per request, µs (median of the runs; Redis is the whole server, shared with other users of it):\n")
    print("| scenario | sesame (embedded) | sesame (PG+Redis) | its PostgreSQL backends | Redis | wrk (embedded) |")
    print("|---|---:|---:|---:|---:|---:|")
    get = lambda r, k: f"{r['cpu_us_per_request'][k]:.0f}" if r and k in r.get("cpu_us_per_request", {}) else "-"
    for name in ROWS:
        r, g = s.get(name), pg.get(name)
        if r or g:
            wrk_us = f"{r['wrk_cpu_us_per_request']:.0f}" if r and r.get("wrk_cpu_us_per_request") is not None else "-"
            print(f"| {name} | {get(r, 'sesame')} | {get(g, 'sesame')} | {get(g, 'postgres')} | {get(g, 'redis')} | {wrk_us} |")


if __name__ == "__main__":
    main()
