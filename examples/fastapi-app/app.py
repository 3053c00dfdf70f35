"""A web app that signs its users in through sesame (OpenID Connect, code flow + PKCE).

Tokens stay on the server (in Redis when REDIS_URL is set, else in memory); the browser
holds only a signed session cookie with a random session id.
"""

import html
import json
import os
import secrets
import time

from authlib.integrations.starlette_client import OAuth
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
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
    request.session.clear()
    request.session["sid"] = sid
    return RedirectResponse("/", status_code=303)


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
