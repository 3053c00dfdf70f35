"""An API that trusts sesame: bearer JWT access tokens verified offline against the JWKS,
and X-API-Key callers verified through introspection with this service's own credentials.
"""

import hashlib
import os
import time

import httpx
import jwt
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

ISSUER = os.environ.get("SESAME_ISSUER", "http://127.0.0.1:8080").rstrip("/")
AUDIENCE = os.environ.get("RS_AUDIENCE", "https://reports.example.com/")
REQUIRED_SCOPE = os.environ.get("RS_SCOPE", "reports:read")
CLIENT_ID = os.environ["CLIENT_ID"]
CLIENT_SECRET = os.environ["CLIENT_SECRET"]
# A positive introspection answer is reused this long; a revoked key is refused at most this late.
API_KEY_CACHE_SECONDS = float(os.environ.get("API_KEY_CACHE_SECONDS", "5"))

metadata = httpx.get(f"{ISSUER}/.well-known/openid-configuration", timeout=5).json()
# Caches the key set for JWKS_CACHE_SECONDS. sesame publishes a new signing key days before it
# signs with it, so an ordinary cache refresh picks it up in time; a token with an unknown kid
# also forces a refetch (at most every 30 s).
jwks = jwt.PyJWKClient(metadata["jwks_uri"], cache_keys=True, lifespan=float(os.environ.get("JWKS_CACHE_SECONDS", "300")))
api_key_cache = {}

app = FastAPI()


def deny(status, error, description):
    headers = {"WWW-Authenticate": f'Bearer error="{error}", error_description="{description}"'} if status == 401 else {}
    return JSONResponse({"error": error, "error_description": description}, status_code=status, headers=headers)


def check_jwt(token):
    try:
        key = jwks.get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token,
            key.key,
            algorithms=["RS256", "ES256", "EdDSA"],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iss", "aud", "sub"]},
        )
    except jwt.PyJWKClientError:
        return None, deny(401, "invalid_token", "signed by an unknown key")
    except jwt.ExpiredSignatureError:
        return None, deny(401, "invalid_token", "token expired")
    except jwt.InvalidAudienceError:
        return None, deny(401, "invalid_token", "token is for another audience")
    except jwt.InvalidTokenError:
        return None, deny(401, "invalid_token", "invalid token")
    if jwt.get_unverified_header(token).get("typ", "").lower() != "at+jwt":
        return None, deny(401, "invalid_token", "not an access token")
    return claims, None


def check_api_key(key, caller):
    digest = hashlib.sha256(key.encode()).hexdigest()
    cached = api_key_cache.get(digest)
    if cached and cached[0] > time.monotonic():
        return cached[1], None
    answer = httpx.post(
        metadata["introspection_endpoint"],
        data={"token": key, "token_type_hint": "api_key", "client_ip": caller},
        auth=(CLIENT_ID, CLIENT_SECRET),
        timeout=5,
    )
    if answer.status_code == 429:
        return None, JSONResponse({"error": "rate_limited"}, status_code=429, headers={"Retry-After": answer.headers.get("Retry-After", "60")})
    answer.raise_for_status()
    claims = answer.json()
    if not claims.get("active"):
        return None, deny(401, "invalid_token", "API key not valid")
    api_key_cache[digest] = (time.monotonic() + API_KEY_CACHE_SECONDS, claims)
    return claims, None


@app.get("/reports")
async def reports(request: Request):
    auth = request.headers.get("authorization", "")
    api_key = request.headers.get("x-api-key")
    if auth.lower().startswith("bearer "):
        claims, error = check_jwt(auth[7:].strip())
    elif api_key:
        claims, error = check_api_key(api_key, request.client.host)
    else:
        return deny(401, "invalid_request", "send a bearer token or an X-API-Key")
    if error:
        return error
    if REQUIRED_SCOPE not in claims.get("scope", "").split():
        return JSONResponse({"error": "insufficient_scope"}, status_code=403)
    return {"caller": claims["sub"], "reports": ["q1", "q2"]}
