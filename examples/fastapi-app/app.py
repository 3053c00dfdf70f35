"""A web app that signs its users in through sesame (OpenID Connect, code flow + PKCE).

Tokens stay on the server (in Redis when REDIS_URL is set, else in memory); the browser
holds only a signed session cookie with a random session id. When the sesame session ends
(sign-out in any app, an administrator, a disabled account), sesame POSTs a logout token to
/backchannel-logout (OpenID Connect Back-Channel Logout): the app checks it against sesame's
keys and ends every local session that sesame session started.
"""

import html
import json
import os
import secrets
import time

from authlib.integrations.starlette_client import OAuth
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.middleware.sessions import SessionMiddleware

ISSUER = os.environ.get("SESAME_ISSUER", "http://127.0.0.1:8080").rstrip("/")
APP_URL = os.environ.get("APP_URL", "http://127.0.0.1:8000").rstrip("/")
APP_NAME = os.environ.get("APP_NAME", "FastAPI app")


class TokenStore:
    """Server-side token storage, keyed by the session's random id."""

    def __init__(self, redis_url):
        self.redis = None
        self.memory = {}
        if redis_url:
            import redis

            self.redis = redis.Redis.from_url(redis_url)

    def put(self, sid, tokens):
        data = json.dumps(tokens)
        if self.redis:
            self.redis.set(f"fastapi-app:{sid}", data, ex=24 * 3600)
        else:
            self.memory[sid] = data

    def get(self, sid):
        data = self.redis.get(f"fastapi-app:{sid}") if self.redis else self.memory.get(sid)
        return json.loads(data) if data else None

    def delete(self, sid):
        if self.redis:
            self.redis.delete(f"fastapi-app:{sid}")
        else:
            self.memory.pop(sid, None)

    # Which local sessions each sesame session (its `sid`) started, for back-channel logout.
    def link(self, sesame_sid, sid):
        if self.redis:
            self.redis.sadd(f"fastapi-app:by-sid:{sesame_sid}", sid)
            self.redis.expire(f"fastapi-app:by-sid:{sesame_sid}", 24 * 3600)
        else:
            self.memory.setdefault(f"by-sid:{sesame_sid}", set()).add(sid)

    def end_sesame_session(self, sesame_sid):
        if self.redis:
            sids = [s.decode() for s in self.redis.smembers(f"fastapi-app:by-sid:{sesame_sid}")]
            self.redis.delete(f"fastapi-app:by-sid:{sesame_sid}")
        else:
            sids = list(self.memory.pop(f"by-sid:{sesame_sid}", set()))
        for sid in sids:
            self.delete(sid)
        return len(sids)

    def first_use_of(self, jti, ttl):
        """True once per logout token id (a replayed logout token is refused)."""
        if self.redis:
            return bool(self.redis.set(f"fastapi-app:jti:{jti}", 1, nx=True, ex=ttl))
        key = f"jti:{jti}"
        if key in self.memory:
            return False
        self.memory[key] = True
        return True


tokens = TokenStore(os.environ.get("REDIS_URL"))
oauth = OAuth()
oauth.register(
    name="sesame",
    server_metadata_url=f"{ISSUER}/.well-known/openid-configuration",
    client_id=os.environ["CLIENT_ID"],
    client_secret=os.environ["CLIENT_SECRET"],
    client_kwargs={"scope": "openid profile email offline_access", "code_challenge_method": "S256"},
)

app = FastAPI()
app.add_middleware(
    SessionMiddleware,
    secret_key=os.environ.get("SESSION_SECRET") or secrets.token_urlsafe(32),
    # Browsers share cookies between ports of one host: give each app its own cookie.
    session_cookie=os.environ.get("SESSION_COOKIE", "fastapi_app_session"),
    same_site="lax",
    https_only=APP_URL.startswith("https://"),
)


def page(body):
    return HTMLResponse(f"<!doctype html><title>{html.escape(APP_NAME)}</title><main>{body}</main>")


def current(request):
    sid = request.session.get("sid")
    return (sid, tokens.get(sid)) if sid else (None, None)


@app.get("/")
async def home(request: Request):
    _, stored = current(request)
    if not stored:
        return page(f'<p id="status">Not signed in.</p><a id="login" href="/login">Sign in</a>')
    user = stored["userinfo"]
    who = html.escape(user.get("preferred_username") or user["sub"])
    return page(
        f'<p id="status">Signed in as <span id="user">{who}</span> to {html.escape(APP_NAME)}.</p>'
        f'<p>Email: <span id="email">{html.escape(user.get("email", ""))}</span></p>'
        f'<a href="/refresh">Refresh tokens</a> · <a href="/logout">Sign out</a>'
    )


@app.get("/login")
async def login(request: Request):
    # Authlib generates state, nonce and the PKCE verifier and keeps them in the session.
    return await oauth.sesame.authorize_redirect(request, f"{APP_URL}/callback")


@app.get("/callback")
async def callback(request: Request):
    # Checks state, exchanges the code with the verifier, validates the ID token (signature,
    # issuer, audience, expiry, nonce, at_hash) against sesame's JWKS.
    token = await oauth.sesame.authorize_access_token(request)
    userinfo = await oauth.sesame.userinfo(token=token)
    sid = secrets.token_urlsafe(32)
    tokens.put(sid, {
        "access_token": token["access_token"],
        "refresh_token": token.get("refresh_token"),
        "id_token": token.get("id_token"),
        "expires_at": token.get("expires_at"),
        "userinfo": dict(userinfo),
    })
    sesame_sid = (token.get("userinfo") or {}).get("sid")
    if sesame_sid:
        tokens.link(sesame_sid, sid)
    request.session.clear()
    request.session["sid"] = sid
    return RedirectResponse("/", status_code=303)


BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"


def logout_refused(description):
    return JSONResponse({"error": "invalid_request", "error_description": description}, status_code=400, headers={"Cache-Control": "no-store"})


@app.post("/backchannel-logout")
async def backchannel_logout(logout_token: str = Form("")):
    # OpenID Connect Back-Channel Logout 1.0 §2.6: a logout token signed by sesame's keys, for
    # this client, fresh, with the logout event, a sid, and no nonce; each one used once.
    metadata = await oauth.sesame.load_server_metadata()
    keys = KeySet.import_key_set(await oauth.sesame.fetch_jwk_set())
    try:
        token = jwt.decode(logout_token, keys, algorithms=metadata.get("id_token_signing_alg_values_supported"))
        if token.header.get("typ") not in (None, "logout+jwt"):
            return logout_refused("not a logout token")
        claims = token.claims
        jwt.JWTClaimsRegistry(
            leeway=30,
            iss={"essential": True, "value": metadata["issuer"]},
            aud={"essential": True, "value": os.environ["CLIENT_ID"]},
            iat={"essential": True},
            exp={"essential": True},
            jti={"essential": True},
        ).validate(claims)
    except (JoseError, ValueError) as e:
        return logout_refused(f"the logout token does not verify: {e}")
    if BACKCHANNEL_EVENT not in (claims.get("events") or {}):
        return logout_refused("no back-channel logout event")
    if "nonce" in claims or not claims.get("sid"):
        return logout_refused("a logout token has a sid and no nonce")
    if not tokens.first_use_of(claims["jti"], 600):
        return logout_refused("this logout token was used already")
    tokens.end_sesame_session(claims["sid"])
    return JSONResponse({}, headers={"Cache-Control": "no-store"})


@app.get("/refresh")
async def refresh(request: Request):
    sid, stored = current(request)
    if not stored or not stored.get("refresh_token"):
        return RedirectResponse("/login", status_code=303)
    token = await oauth.sesame.fetch_access_token(grant_type="refresh_token", refresh_token=stored["refresh_token"])
    stored.update(access_token=token["access_token"], refresh_token=token.get("refresh_token"), expires_at=token.get("expires_at"))
    tokens.put(sid, stored)
    left = int(stored["expires_at"] - time.time()) if stored.get("expires_at") else "?"
    return page(f'<p id="status">Tokens refreshed; the new access token lives {left} s.</p><a href="/">Back</a>')


@app.get("/logout")
async def logout(request: Request):
    sid, stored = current(request)
    request.session.clear()
    if sid:
        tokens.delete(sid)
    metadata = await oauth.sesame.load_server_metadata()
    params = {"post_logout_redirect_uri": f"{APP_URL}/", "client_id": os.environ["CLIENT_ID"]}
    if stored and stored.get("id_token"):
        params["id_token_hint"] = stored["id_token"]
    from urllib.parse import urlencode

    return RedirectResponse(f"{metadata['end_session_endpoint']}?{urlencode(params)}", status_code=303)
