// Drives sesame with client libraries we did not write: panva's oauth4webapi and openid-client
// (both OpenID-certified). Run by tests/it/dpop_par_clients.rs against a test server:
//
//   node dpop_par.mjs SCENARIO      (settings in the environment; one JSON object on stdout)
//
// SESAME_ISSUER, CLIENT_ID, CLIENT_SECRET (absent: a public client), USERNAME, PASSWORD.
// The browser part of the code flow (login form: username, password, hidden req and csrf) is
// plain fetch with a cookie jar, following redirects by hand.
import * as oauth from 'oauth4webapi';
import * as client from 'openid-client';

const env = (name) => process.env[name];
const issuer = new URL(env('SESAME_ISSUER'));
const insecure = { [oauth.allowInsecureRequests]: true }; // the test server is on http://127.0.0.1

async function discover() {
  const res = await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...insecure });
  return oauth.processDiscoveryResponse(issuer, res);
}

function clientAuth() {
  return env('CLIENT_SECRET') ? oauth.ClientSecretBasic(env('CLIENT_SECRET')) : oauth.None();
}

/// Runs `request` again once if the server asks for its DPoP nonce (RFC 9449 §8).
async function withNonceRetry(request, process) {
  try {
    return await process(await request());
  } catch (err) {
    if (oauth.isDPoPNonceError(err)) return { ...(await process(await request())), nonceRetried: true };
    throw err;
  }
}

/// What a refused resource request looked like to the library.
async function refusal(promise) {
  try {
    const res = await promise;
    return { status: res.status };
  } catch (err) {
    if (err instanceof oauth.WWWAuthenticateChallengeError) {
      return { status: err.status, scheme: err.cause[0]?.scheme, error: err.cause[0]?.parameters?.error };
    }
    throw err;
  }
}

/// The browser: from the authorization URL through sign-in to the client's redirect URI.
async function browse(authorizationUrl) {
  const jar = new Map();
  const cookie = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  const keep = (res) => {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const at = pair.indexOf('=');
      jar.set(pair.slice(0, at), pair.slice(at + 1));
    }
  };
  let url = authorizationUrl.toString();
  for (let step = 0; step < 10; step++) {
    if (new URL(url).origin !== issuer.origin) return new URL(url);
    let res = await fetch(url, { redirect: 'manual', headers: { cookie: cookie() } });
    keep(res);
    if (res.status === 200 && new URL(url).pathname === '/login') {
      const page = await res.text();
      const hidden = (name) => page.match(new RegExp(`name="${name}" value="([^"]*)"`))[1];
      const form = new URLSearchParams({ req: hidden('req'), csrf: hidden('csrf'), username: env('USERNAME'), password: env('PASSWORD') });
      res = await fetch(new URL('/login', issuer), { method: 'POST', redirect: 'manual', body: form, headers: { cookie: cookie() } });
      keep(res);
    }
    const location = res.headers.get('location');
    if (!location) throw new Error(`no redirect from ${url}: ${res.status} ${await res.text()}`);
    url = new URL(location, url).toString();
  }
  throw new Error('too many redirects');
}

const scenarios = {
  // client_credentials with DPoP, then the admin API and introspection with the bound token.
  async 'oauth4webapi-client-credentials'() {
    const as = await discover();
    const c = { client_id: env('CLIENT_ID') };
    const keyPair = await oauth.generateKeyPair('ES256');
    const DPoP = oauth.DPoP(c, keyPair);
    const tokens = await withNonceRetry(
      () => oauth.clientCredentialsGrantRequest(as, c, clientAuth(), { scope: 'sesame:admin' }, { DPoP, ...insecure }),
      (res) => oauth.processClientCredentialsResponse(as, c, res),
    );
    const adminUrl = new URL('/admin/api-keys', issuer);
    const res = await oauth.protectedResourceRequest(tokens.access_token, 'GET', adminUrl, undefined, undefined, { DPoP, ...insecure });
    const admin = { status: res.status, body: await res.json() };
    const asBearer = await refusal(oauth.protectedResourceRequest(tokens.access_token, 'GET', adminUrl, undefined, undefined, insecure));
    const introspected = await oauth.processIntrospectionResponse(as, c, await oauth.introspectionRequest(as, c, clientAuth(), tokens.access_token, insecure));
    return { token_type: tokens.token_type, nonceRetried: !!tokens.nonceRetried, jkt: await DPoP.calculateThumbprint(), admin, asBearer, introspected };
  },

  // PAR (with a DPoP proof, binding the code to the key), authorization code + PKCE, the token
  // request with DPoP, userinfo with DPoP, and a refresh with DPoP.
  async 'oauth4webapi-par-code'() {
    const as = await discover();
    const c = { client_id: env('CLIENT_ID') };
    const redirect_uri = env('REDIRECT_URI');
    const keyPair = await oauth.generateKeyPair('ES256');
    const DPoP = oauth.DPoP(c, keyPair);
    const verifier = oauth.generateRandomCodeVerifier();
    const nonce = oauth.generateRandomNonce();
    const params = { redirect_uri, scope: 'openid profile email offline_access', response_type: 'code', nonce,
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' };
    const pushed = await withNonceRetry(
      () => oauth.pushedAuthorizationRequest(as, c, clientAuth(), params, { DPoP, ...insecure }),
      (res) => oauth.processPushedAuthorizationResponse(as, c, res),
    );
    const authorizationUrl = new URL(as.authorization_endpoint);
    authorizationUrl.searchParams.set('client_id', c.client_id);
    authorizationUrl.searchParams.set('request_uri', pushed.request_uri);
    const callback = await browse(authorizationUrl);
    const callbackParams = oauth.validateAuthResponse(as, c, callback, oauth.expectNoState);
    const tokens = await withNonceRetry(
      () => oauth.authorizationCodeGrantRequest(as, c, clientAuth(), callbackParams, redirect_uri, verifier, { DPoP, ...insecure }),
      (res) => oauth.processAuthorizationCodeResponse(as, c, res, { expectedNonce: nonce, requireIdToken: true }),
    );
    const claims = oauth.getValidatedIdTokenClaims(tokens);
    const userinfo = await oauth.processUserInfoResponse(as, c, claims.sub, await oauth.userInfoRequest(as, c, tokens.access_token, { DPoP, ...insecure }));
    // The same request URI again: it was used.
    const replay = await fetch(authorizationUrl, { redirect: 'manual' });
    const refreshed = await withNonceRetry(
      () => oauth.refreshTokenGrantRequest(as, c, clientAuth(), tokens.refresh_token, { DPoP, ...insecure }),
      (res) => oauth.processRefreshTokenResponse(as, c, res),
    );
    return {
      expires_in: pushed.expires_in, request_uri: pushed.request_uri, token_type: tokens.token_type, sub: claims.sub, userinfo,
      replay_status: replay.status, refreshed_token_type: refreshed.token_type, refresh_token: refreshed.refresh_token,
      access_token: refreshed.access_token, jkt: await DPoP.calculateThumbprint(),
    };
  },

  // openid-client: the same code flow through its high-level API (PAR, DPoP, PKCE, userinfo).
  async 'openid-client-par-code'() {
    const secret = env('CLIENT_SECRET');
    const config = await client.discovery(issuer, env('CLIENT_ID'), secret ? { client_secret: secret } : undefined,
      secret ? client.ClientSecretBasic(secret) : client.None(), { execute: [client.allowInsecureRequests] });
    const DPoP = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const url = await client.buildAuthorizationUrlWithPAR(config, {
      redirect_uri: env('REDIRECT_URI'), scope: 'openid email', state,
      code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    }, { DPoP });
    const callback = await browse(url);
    const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state, idTokenExpected: true }, undefined, { DPoP });
    const sub = tokens.claims().sub;
    const userinfo = await client.fetchUserInfo(config, tokens.access_token, sub, { DPoP });
    return { token_type: tokens.token_type, sub, userinfo, request_uri: url.searchParams.get('request_uri') };
  },

  // openid-client: client_credentials with DPoP and a protected resource (the admin API).
  async 'openid-client-client-credentials'() {
    const secret = env('CLIENT_SECRET');
    const config = await client.discovery(issuer, env('CLIENT_ID'), { client_secret: secret }, client.ClientSecretBasic(secret), { execute: [client.allowInsecureRequests] });
    const DPoP = client.getDPoPHandle(config, await client.randomDPoPKeyPair('EdDSA'));
    const tokens = await client.clientCredentialsGrant(config, { scope: 'sesame:admin' }, { DPoP });
    const res = await client.fetchProtectedResource(config, tokens.access_token, new URL('/admin/api-keys', issuer), 'GET', null, undefined, { DPoP });
    return { token_type: tokens.token_type, admin_status: res.status, admin: await res.json() };
  },
};

const name = process.argv[2];
if (!scenarios[name]) {
  console.error(`unknown scenario ${name}; one of ${Object.keys(scenarios).join(', ')}`);
  process.exit(2);
}
try {
  console.log(JSON.stringify(await scenarios[name]()));
} catch (err) {
  console.error(err?.stack ?? err, err?.cause ? JSON.stringify(err.cause) : '');
  process.exit(1);
}
