"""sesame under test: started on a backend, with the clients, users, keys and tokens the scenarios use."""

import json
import os
import re
import subprocess
import time
import urllib.parse

from . import common
from .common import PASSWORD, VERIFIER, CHALLENGE, Server, basic, cookies_from, form, free_port, header, request

def sesame_cli(binary, env, *args):
    out = subprocess.run([binary, *args, "--json"], env={**os.environ, **env}, cwd=env["_CWD"], capture_output=True, text=True, input=PASSWORD)
    if out.returncode != 0:
        raise SystemExit(f"sesame {' '.join(args)} failed: {out.stderr}")
    return json.loads(out.stdout)


def start_sesame(binary, name, database_url, redis_url, mtls=None):
    """sesame on a backend, set up for every scenario; `mtls` (mtls.certificates()) also trusts
    127.0.0.1 as a TLS-terminating proxy that passes client certificates on in a header."""
    workdir = os.path.join(common.RESULTS, f"{name}-data")
    os.makedirs(workdir, exist_ok=True)
    if mtls:
        with open(os.path.join(workdir, "sesame.toml"), "w") as f:
            f.write(f'trusted_proxies = ["127.0.0.1"]\n\n[tls]\nclient_ca_file = {json.dumps(mtls["ca_file"])}\n'
                    f'client_cert_header = {json.dumps(mtls["header"])}\n')
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
    server.is_sesame = True
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
    offline_auth = basic(offline["client_id"], offline["client_secret"])
    # API keys: checked by introspection, by the admin API's test, and exchanged for a JWT. No
    # limit the benchmark could reach: the rate limiter still counts every use.
    api_key = cli("apikey", "generate", "bench", "--scope", "api:read", "--rate-limit", "1000000000")["key"]
    admin = cli("client", "add", "--name", "bench-admin", "--grant-type", "client_credentials", "--scope", "sesame:admin")
    admin_auth = basic(admin["client_id"], admin["client_secret"])
    server.cli = cli
    t = {
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
        "offline_auth": offline_auth,
        "api_key": api_key,
        "admin_token": lambda: client_credentials(server.base, admin_auth, "sesame:admin"),
        "new_chains": lambda n: [new_chain(server.base, f"/authorize?{offline_query}", cookie, offline_auth) for _ in range(n)],
    }
    if mtls:
        tls = cli("client", "add", "--name", "bench-mtls", "--grant-type", "client_credentials", "--scope", "api:read",
                  "--auth-method", "tls_client_auth", "--tls-subject-dn", mtls["subject_dn"], "--access-token-alg", "ES256")
        t["mtls"] = {"client_id": tls["client_id"], "header": mtls["header"], "escaped": mtls["escaped"], "resource": None}
    return server, t


def client_credentials(base, auth, scope=None):
    """An access token for the client of `auth` (Basic credentials)."""
    status, _, data = request(base, "POST", "/token", {"Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Basic {auth}"},
                              form({"grant_type": "client_credentials", **({"scope": scope} if scope else {})}))
    if status != 200:
        raise SystemExit(f"client_credentials for the benchmark answered {status}: {data[:200]!r}")
    return json.loads(data)["access_token"]


def new_chain(base, authorize, cookie, auth, token_path="/token"):
    """The first refresh token of a new family: a code round on the live SSO session, no login."""
    _, h, _ = request(base, "GET", authorize, {"Cookie": cookie})
    code = urllib.parse.parse_qs(urllib.parse.urlparse(header(h, "location")).query)["code"][0]
    status, _, data = request(base, "POST", token_path, {"Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Basic {auth}"},
                              form({"grant_type": "authorization_code", "code": code, "redirect_uri": "http://127.0.0.1:9/cb", "code_verifier": VERIFIER}))
    if status != 200:
        raise SystemExit(f"a code round for a refresh chain answered {status}: {data[:200]!r}")
    return json.loads(data)["refresh_token"]
