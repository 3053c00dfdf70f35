"""CPU time per request: what sesame, its PostgreSQL backends and the Redis server used during a
run, from /proc (user + system time). The capacity model (docs/capacity.md) is built on these.

sesame's PostgreSQL backends are found through its sockets: the local ports of its connections
to port 5432, matched in pg_stat_activity. Redis is one process shared with whoever else uses it
on this machine, so its figure is an upper bound."""

import os
import re
import subprocess

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICK


def socket_inodes(pid):
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                m = re.fullmatch(r"socket:\[(\d+)\]", os.readlink(f"/proc/{pid}/fd/{fd}"))
            except OSError:
                continue
            if m:
                inodes.add(m.group(1))
    except OSError:
        pass
    return inodes


def local_ports_to(pid, remote_port):
    """The local ports of `pid`'s TCP connections to `remote_port`."""
    inodes, ports = socket_inodes(pid), []
    for table in ["/proc/net/tcp", "/proc/net/tcp6"]:
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[9] in inodes and int(f[2].rsplit(":", 1)[1], 16) == remote_port:
                ports.append(int(f[1].rsplit(":", 1)[1], 16))
    return ports


def postgres_backends(pid):
    """The pids of the PostgreSQL backends serving `pid`'s connections (port 5432 on this machine)."""
    ports = local_ports_to(pid, 5432)
    if not ports:
        return []
    out = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qtAc",
                          f"select pid from pg_stat_activity where client_port in ({','.join(map(str, ports))})"],
                         capture_output=True, text=True)
    return [int(x) for x in out.stdout.split()]


def redis_pid():
    out = subprocess.run(["redis-cli", "-h", "127.0.0.1", "info", "server"], capture_output=True, text=True).stdout
    m = re.search(r"process_id:(\d+)", out)
    return int(m.group(1)) if m else None


class Usage:
    """Snapshots of CPU seconds; `with_stores` adds sesame's PostgreSQL backends and Redis."""

    def __init__(self, pid, with_stores=False):
        self.pid, self.with_stores = pid, with_stores
        self.redis = redis_pid() if with_stores else None

    def snapshot(self):
        snap = {"sesame": cpu_seconds(self.pid)}
        if self.with_stores:
            snap["postgres"] = {p: cpu_seconds(p) for p in postgres_backends(self.pid)}
            snap["redis"] = cpu_seconds(self.redis) if self.redis else None
        return snap

    @staticmethod
    def per_request(before, after, requests):
        """CPU microseconds per request of each process, between two snapshots."""
        if not requests:
            return {}
        out = {"sesame": (after["sesame"] - before["sesame"]) * 1e6 / requests}
        if "postgres" in after:
            pg = sum((after["postgres"][p] or 0) - (before["postgres"].get(p) or 0) for p in after["postgres"])
            out["postgres"] = pg * 1e6 / requests
            if after["redis"] is not None and before["redis"] is not None:
                out["redis"] = (after["redis"] - before["redis"]) * 1e6 / requests
        return {k: round(v, 1) for k, v in out.items()}
