"""The data-scale preload: millions of rows written straight into a migrated database with
`INSERT ... SELECT` over a generated series, after the benchmark's own set-up, so its clients,
users, keys and tokens are among them.

Every table's rows are copies of a row the benchmark made through sesame (a client, the user,
a refresh family and its token, an API key): whatever columns the migrations gave the table, the
copies have them, with new identifiers (22 base64url characters, as sesame's), new SHA-256-sized
hashes (random bytes), and times spread over the last 30 days. Each user has an SSO session (one
in four ended) with the client it signed in to. Refresh tokens come in families
of four (three rotated, the last live), each with the access-token jti rotation records; one in
fifty families is revoked, one API key in twenty. Audit events are refused and suspicious API-key
checks of random keys and session, sign-in and second-factor events of random users.
"""

import os
import re
import subprocess
import sqlite3
import time

FULL = {"clients": 100_000, "users": 100_000, "sso_sessions": 100_000, "refresh_families": 250_000, "api_keys": 1_000_000, "audit_events": 10_000_000}
TOKENS_PER_FAMILY = 4
DAY = 86_400


def counts(scale):
    return {k: max(10, int(v * scale)) for k, v in FULL.items()}


def statements(n, now):
    """(table, rows, {column: expression}) in order: the copies' columns that differ from the
    template row (TEMPLATES), written with `rid(kind, x)` (an id), `rbytes(x)` (32 random bytes)
    and x, from 1 to the table's count; None for audit_events (AUDIT_COLUMNS)."""
    c, u, ss, f, k, a = n["clients"], n["users"], n["sso_sessions"], n["refresh_families"], n["api_keys"], n["audit_events"]
    t = TOKENS_PER_FAMILY
    fam = f"((x - 1) / {t} + 1)"  # the family of token x
    return [
        ("clients", c, {
            "id": "rid('client', x)", "name": "'app ' || x", "secret_hash": "rbytes(x)",
            "redirect_uris": "'[\"https://app' || x || '.example.com/callback\"]'", "created_at": f"{now} - x * 25"}),
        ("users", u, {
            "sub": "rid('user', x)", "username": "'user' || x", "email": "'user' || x || '@example.com'", "name": "'User ' || x",
            "created_at": f"{now} - x * 25"}),
        # One session a user, a quarter of them ended; each with the client it signed in to.
        ("sso_sessions", ss, {
            "sid": "rid('session', x)", "sub": f"rid('user', x % {u} + 1)", "key_hash": "rhex(x)", "created_at": f"{now} - x % {DAY}",
            "auth_time": f"{now} - x % {DAY}", "last_seen_at": f"{now} - x % 3600", "expires_at": f"{now} + {8 * 3600} - x % 3600",
            "ended_at": f"CASE WHEN x % 4 = 0 THEN {now} - x % 3600 END", "end_reason": "CASE WHEN x % 4 = 0 THEN 'logout' END"}),
        ("sso_session_clients", ss, {"sid": "rid('session', x)", "client_id": f"rid('client', x % {c} + 1)", "first_at": f"{now} - x % {DAY}"}),
        ("refresh_families", f, {
            "id": "rid('family', x)", "client_id": f"rid('client', x % {c} + 1)", "sub": f"rid('user', x % {u} + 1)",
            "created_at": f"{now} - x % {30 * DAY}", "absolute_expires_at": f"{now} - x % {30 * DAY} + (absolute_expires_at - created_at)",
            "revoked_at": f"CASE WHEN x % 50 = 0 THEN {now} - x % {DAY} END"}),
        ("refresh_tokens", f * t, {
            "token_hash": "rbytes(x)", "family_id": f"rid('family', {fam})", "client_id": f"rid('client', {fam} % {c} + 1)",
            "sub": f"rid('user', {fam} % {u} + 1)", "sid": f"rid('session', {fam})",
            "created_at": f"{now} - {fam} % {30 * DAY} + ((x - 1) % {t}) * 900",
            "idle_expires_at": f"{now} - {fam} % {30 * DAY} + ((x - 1) % {t}) * 900 + (idle_expires_at - created_at)",
            "used_at": f"CASE WHEN (x - 1) % {t} < {t - 1} THEN {now} - {fam} % {30 * DAY} + ((x - 1) % {t} + 1) * 900 END",
            "revoked_at": f"CASE WHEN {fam} % 50 = 0 THEN {now} - {fam} % {DAY} END"}),
        ("refresh_family_access_tokens", f * t, {
            "family_id": f"rid('family', {fam})", "jti": "rid('jti', x)", "expires_at": f"{now} - {fam} % {30 * DAY} + ((x - 1) % {t}) * 900 + 900"}),
        ("api_keys", k, {
            "id": "rid('key', x)", "name": "'service ' || x", "key_hash": "rbytes(x)", "prefix": "'ses_' || env || '_' || substr(rid('key', x), 1, 4)",
            "created_at": f"{now} - x % {60 * DAY}", "last_used_at": f"{now} - x % {DAY}", "last_used_from": "'10.0.' || (x % 250) || '.' || (x % 200)",
            "revoked_at": f"CASE WHEN x % 20 = 0 THEN {now} - x % {DAY} END"}),
        ("audit_events", a, None),  # written from scratch (below): no template row before the first check
    ]


AUDIT_COLUMNS = ["at", "kind", "subject", "caller", "result", "reason", "details"]


def audit_exprs(n, now):
    """Refused API-key checks (audited once per key, reason and minute), suspicious uses, ended
    sessions, upstream sign-ins and second-factor failures, over 10 million rows' worth of time."""
    k, u, a = n["api_keys"], n["users"], n["audit_events"]
    kind = "CASE WHEN x % 20 < 10 THEN 'api_key.refused' WHEN x % 20 < 11 THEN 'api_key.suspicious' WHEN x % 20 < 15 THEN 'session.end' " \
           "WHEN x % 20 < 18 THEN 'upstream.sign_in' ELSE 'mfa.failure' END"
    return {
        "at": f"{now} - ({a} - x) / 4",
        "kind": kind,
        "subject": f"CASE WHEN x % 20 < 11 THEN rid('key', x % {k} + 1) ELSE rid('user', x % {u} + 1) END",
        "caller": "'10.0.' || (x % 250) || '.' || (x % 200)",
        "result": "CASE WHEN x % 20 < 15 THEN 'denied' ELSE 'ok' END",
        "reason": "CASE WHEN x % 20 < 10 THEN 'revoked' WHEN x % 20 < 11 THEN 'use from a new address' END",
        "details": "CASE WHEN x % 20 < 11 THEN '{\"name\":\"service ' || (x % " + str(k) + " + 1) || '\",\"env\":\"prod\"}' ELSE '{\"amr\":[\"pwd\"]}' END",
    }


TEMPLATES = {
    "clients": "t.name = 'web'",
    "users": "t.username = 'alice'",
    "sso_sessions": "t.sid = (SELECT sid FROM sso_sessions ORDER BY sid LIMIT 1)",
    "sso_session_clients": "t.sid = (SELECT sid FROM sso_session_clients ORDER BY sid LIMIT 1) AND t.client_id = (SELECT min(client_id) FROM sso_session_clients)",
    "refresh_families": "t.id = (SELECT id FROM refresh_families ORDER BY id LIMIT 1)",
    "refresh_tokens": "t.token_hash = (SELECT token_hash FROM refresh_tokens ORDER BY token_hash LIMIT 1)",
    "refresh_family_access_tokens": "t.jti = (SELECT jti FROM refresh_family_access_tokens ORDER BY jti LIMIT 1)",
    "api_keys": "t.name = 'bench'",
}


def insert_sql(table, columns, exprs, series):
    cols = ", ".join(columns)
    values = ", ".join(exprs.get(col, f"t.{col}") for col in columns)
    return f"INSERT INTO {table} ({cols}) SELECT {values} FROM {table} t, {series} WHERE {TEMPLATES[table]}"


def postgres(schema, n):
    """Preloads schema `schema` of the local `test` database; returns seconds per table."""
    def psql(sql):
        out = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-v", "ON_ERROR_STOP=1", "-qtA",
                              "-c", f"SET search_path TO {schema}; SET maintenance_work_mem = '256MB'", "-c", sql], capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"preload: {out.stderr.strip()}\n  in: {sql[:300]}")
        return out.stdout
    psql("""CREATE FUNCTION rid(kind text, x bigint) RETURNS text IMMUTABLE LANGUAGE sql AS
              $$ SELECT translate(substr(encode(sha256(convert_to(kind || ':' || x, 'UTF8')), 'base64'), 1, 22), '+/', '-_') $$;
            CREATE FUNCTION rbytes(x bigint) RETURNS bytea VOLATILE LANGUAGE sql AS
              $$ SELECT sha256(convert_to(random()::text || ':' || x, 'UTF8')) $$;
            CREATE FUNCTION rhex(x bigint) RETURNS text VOLATILE LANGUAGE sql AS $$ SELECT encode(rbytes(x), 'hex') $$;""")
    now = int(time.time())
    seconds = {}
    for table, count, exprs in statements(n, now):
        started = time.time()
        series = f"generate_series(1, {count}) x"
        if exprs is None:
            # The audit indexes are built once after the load, not row by row.
            indexes = psql(f"SELECT indexdef FROM pg_indexes WHERE schemaname = '{schema}' AND tablename = 'audit_events' AND indexname <> 'audit_events_pkey'").strip().split("\n")
            names = [re.search(r"INDEX (\S+) ON", d).group(1) for d in indexes if d]
            psql(f"{''.join(f'DROP INDEX {i}; ' for i in names)}INSERT INTO audit_events ({', '.join(AUDIT_COLUMNS)}) "
                 f"SELECT {', '.join(audit_exprs(n, now)[c] for c in AUDIT_COLUMNS)} FROM {series}; " + "; ".join(d for d in indexes if d))
        else:
            columns = psql(f"SELECT column_name FROM information_schema.columns WHERE table_schema = '{schema}' AND table_name = '{table}' ORDER BY ordinal_position").split()
            psql(insert_sql(table, columns, exprs, series))
        seconds[table] = round(time.time() - started, 1)
        print(f"    preload {table}: {count} rows in {seconds[table]} s", flush=True)
    started = time.time()
    psql("DROP FUNCTION rid(text, bigint); DROP FUNCTION rhex(bigint); DROP FUNCTION rbytes(bigint)")
    psql("VACUUM ANALYZE")
    seconds["vacuum analyze"] = round(time.time() - started, 1)
    return seconds


def postgres_sizes(schema):
    """Rows and total bytes (table, indexes, TOAST) per table, and the schema's total."""
    out = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qtAF", "|", "-c",
                          f"SELECT c.relname, c.reltuples::bigint, pg_total_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                          f"WHERE n.nspname = '{schema}' AND c.relkind = 'r' ORDER BY 3 DESC"], check=True, capture_output=True, text=True).stdout
    sizes = {}
    for line in out.split():
        name, rows, size = line.split("|")
        sizes[name] = {"rows": int(rows), "bytes": int(size)}
    return sizes


def sqlite(path, n):
    """Preloads the SQLite database at `path` (sesame may be running: it waits on the write lock)."""
    import base64
    import hashlib

    db = sqlite3.connect(path, timeout=60, isolation_level=None)
    db.create_function("rid", 2, lambda kind, x: base64.urlsafe_b64encode(hashlib.sha256(f"{kind}:{x}".encode()).digest()).decode()[:22], deterministic=True)
    db.create_function("rbytes", 1, lambda x: os.urandom(32))
    db.create_function("rhex", 1, lambda x: os.urandom(32).hex())
    db.execute("PRAGMA cache_size = -262144")  # 256 MiB for this connection
    now = int(time.time())
    seconds = {}
    for table, count, exprs in statements(n, now):
        started = time.time()
        cte = f"WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < {count}) "
        db.execute("BEGIN IMMEDIATE")
        if exprs is None:
            indexes = [sql for (sql,) in db.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit_events' AND sql IS NOT NULL")]
            for sql in indexes:
                name = re.search(r"INDEX (?:IF NOT EXISTS )?(\S+)", sql).group(1)
                db.execute(f"DROP INDEX {name}")
            db.execute(f"{cte}INSERT INTO audit_events ({', '.join(AUDIT_COLUMNS)}) "
                       f"SELECT {', '.join(audit_exprs(n, now)[c] for c in AUDIT_COLUMNS)} FROM s")
            for sql in indexes:
                db.execute(sql)
        else:
            columns = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
            db.execute(cte + insert_sql(table, columns, exprs, "s"))
        db.execute("COMMIT")
        seconds[table] = round(time.time() - started, 1)
        print(f"    preload {table}: {count} rows in {seconds[table]} s", flush=True)
    started = time.time()
    db.execute("ANALYZE")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    seconds["analyze + checkpoint"] = round(time.time() - started, 1)
    db.close()
    return seconds


def sqlite_sizes(path):
    """Rows and bytes per table and its indexes (dbstat, when the library has it), and the file size."""
    db = sqlite3.connect(path, timeout=60)
    sizes = {}
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%'")]
    try:
        per_object = dict(db.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"))
        owner = dict(db.execute("SELECT name, tbl_name FROM sqlite_master"))
    except sqlite3.OperationalError:
        per_object, owner = {}, {}
    for table in tables:
        rows = db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        size = sum(b for name, b in per_object.items() if owner.get(name) == table or name == table) if per_object else None
        sizes[table] = {"rows": rows, "bytes": size}
    db.close()
    sizes["(file)"] = {"rows": None, "bytes": sum(os.path.getsize(path + ext) for ext in ["", "-wal"] if os.path.exists(path + ext))}
    return sizes


# The hot statements of the data-scale scenarios, as sesame sends them (src/store/sql/), for a
# preloaded row picked first (PICK: its key as an SQL literal); the UPDATE is rolled back.
HOT_QUERIES = {
    "refresh token by hash (introspection, rotation)": (
        "SELECT quote_literal(token_hash) || '::bytea' FROM refresh_tokens WHERE used_at IS NULL ORDER BY created_at DESC OFFSET {middle} LIMIT 1",
        "SELECT t.token_hash, t.family_id, t.client_id, t.sub, t.scopes, t.auth_time, t.sid, t.created_at, t.idle_expires_at, t.used_at, t.revoked_at, "
        "f.absolute_expires_at, f.revoked_at AS family_revoked_at FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id WHERE t.token_hash = {key}"),
    "rotation: mark the presented token used": (
        "SELECT quote_literal(token_hash) || '::bytea' FROM refresh_tokens WHERE used_at IS NULL ORDER BY created_at DESC OFFSET {middle} LIMIT 1",
        "UPDATE refresh_tokens SET used_at = 1 WHERE token_hash = {key} AND used_at IS NULL AND revoked_at IS NULL "
        "AND NOT EXISTS (SELECT 1 FROM refresh_families f WHERE f.id = refresh_tokens.family_id AND f.revoked_at IS NOT NULL)"),
    "API key by hash (a cache miss)": (
        "SELECT quote_literal(key_hash) || '::bytea' FROM api_keys ORDER BY created_at OFFSET {middle} LIMIT 1",
        "SELECT * FROM api_keys WHERE key_hash = {key}"),
    "audit events of one subject (admin API, newest first)": (
        "SELECT quote_literal(subject) FROM audit_events ORDER BY id DESC LIMIT 1",
        "SELECT * FROM audit_events WHERE subject = {key} ORDER BY id DESC LIMIT 50"),
}


def postgres_explain(schema, middle):
    """EXPLAIN (ANALYZE, BUFFERS) of each hot statement on the preloaded schema, for a row from
    the middle of the table (`middle` rows in)."""
    run = lambda *sqls: subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qtA", "-c", f"SET search_path TO {schema}",
                                        *[a for sql in sqls for a in ("-c", sql)]], capture_output=True, text=True)
    out = {}
    for name, (pick, sql) in HOT_QUERIES.items():
        key = run(pick.format(middle=middle)).stdout.strip()
        res = run("BEGIN", f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql.format(key=key)}", "ROLLBACK")
        out[name] = [line for line in res.stdout.splitlines() if line.strip()] or [res.stderr.strip()]
    return out
