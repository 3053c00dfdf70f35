"""The peer: node-oidc-provider, configured in peer/provider.mjs for the same work."""

import json
import re
import urllib.parse

from .common import BENCH, SECRET, CHALLENGE, Server, basic, cookies_from, form, free_port, header, request
from .sesame import new_chain


def start_peer(mtls=None):
    port = free_port()
    env = {"PORT": str(port), "CLIENT_SECRET": SECRET, "NODE_ENV": "production"}
    if mtls:
        env.update({"CLIENT_CA_FILE": mtls["ca_file"], "MTLS_SUBJECT_DN": mtls["subject_dn"], "MTLS_HEADER": mtls["header"]})
    server = Server("peer", ["node", "peer/provider.mjs"], env, BENCH, port)
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
    web = basic("bench-web", SECRET)
    # Refresh tokens come from a client of their own (as on sesame), so the code round stays without.
    offline = basic("bench-offline", SECRET)
    offline_authorize = authorize.replace("client_id=bench-web", "client_id=bench-offline")
    token_path = path(doc["token_endpoint"])
    chain = lambda: new_chain(server.base, offline_authorize, session_cookie, offline, token_path)
    t = {
        "cc": {"RS256": cc, "ES256": cc, "EdDSA": cc},
        "cc_resource": {"RS256": "https://api.example.com/", "ES256": "https://api-es256.example.com/", "EdDSA": "https://api-eddsa.example.com/"},
        "rs_auth": basic("bench-rs", SECRET),
        "token_path": path(doc["token_endpoint"]),
        "introspect_path": path(doc["introspection_endpoint"]),
        "jwks_path": path(doc["jwks_uri"]),
        "authorize": authorize,
        "cookie": session_cookie,
        "web_auth": web,
        # A refresh token to introspect (by its holder, as on sesame), and chains to rotate.
        "refresh": chain(),
        # It answers 400 for a JWT access token ("Structured JWT Tokens cannot be introspected").
        "introspects_jwt": False,
        "offline_auth": offline,
        "new_chains": lambda n: [chain() for _ in range(n)],
        "login_body": None,
        "login_cookie": "",
    }
    if mtls:
        t["mtls"] = {"client_id": "bench-mtls", "header": mtls["header"], "escaped": mtls["escaped"], "resource": "https://api-es256.example.com/"}
    return server, t
