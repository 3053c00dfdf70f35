"""What every part of the benchmark shares: paths, the results directory, HTTP helpers, wrk."""

import base64
import http.client
import os
import re
import secrets
import subprocess
import time
import urllib.parse

BENCH = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(BENCH)
SECRET = "bench-" + secrets.token_urlsafe(16)
PASSWORD = "bench password 123"
AUDIENCE = "https://api.example.com/"
VERIFIER = "bench-verifier-" + "v" * 40
# Where this run writes its logs and results (bench.py sets it).
RESULTS = None
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


def wrk(base, path, duration, connections, script=None, env=None, threads=2):
    """One wrk run. A script that checks answers (form.lua with EXPECT, refresh.lua) writes the
    count of bad ones to REPORT (made here unless the caller names one and reads it itself): they
    are counted as errors, with the non-2xx/3xx answers and the socket errors."""
    env = dict(env or {})
    report = None
    if script and "REPORT" not in env:
        report = env["REPORT"] = os.path.join(RESULTS, f"wrk-report-{time.time_ns()}.txt")
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "10s"]
    if script:
        cmd += ["-s", os.path.join(BENCH, "lua", script)]
    out = subprocess.run(cmd + [base + path], env={**os.environ, "THREADS": str(threads), **env}, capture_output=True, text=True).stdout
    unit = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    pct = lambda p: (lambda m: float(m.group(1)) * unit[m.group(2)] if m else None)(re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M))
    non2xx = sum(int(x) for x in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    socket_errors = sum(int(x) for x in sock.groups()) if sock else 0
    bad = 0
    if report and os.path.exists(report):
        with open(report) as f:
            bad = int(f.read().split()[0] or 0)
        os.remove(report)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    requests = re.search(r"(\d+) requests in", out)
    return {"rps": float(rps.group(1)) if rps else 0.0, "p50_ms": pct(50), "p99_ms": pct(99), "errors": non2xx + socket_errors + bad,
            "requests": int(requests.group(1)) if requests else 0, "non_2xx_3xx": non2xx, "socket_errors": socket_errors, "bad_answers": bad}


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds():
    """CPU time of the children waited for (the wrk processes; sesame is waited for only at its end)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def mib(kib):
    return f"{kib / 1024:.1f}" if kib is not None else "-"
