// A command-line tool's side of the device authorization grant, written with panva's
// openid-client (on oauth4webapi): discovery, the device authorization request, polling as the
// library does it, the ID token's validation, then userinfo.
//
//   node device_flow.mjs ISSUER CLIENT_ID
//
// Prints JSON lines: first what the user is shown ({user_code, verification_uri,
// verification_uri_complete, interval}), then what the tool got ({sub, claims, userinfo,
// scope, refresh_token}), or {error} on failure (exit status 1).
import * as client from 'openid-client';

const [issuer, clientId] = process.argv.slice(2);
const print = (value) => process.stdout.write(JSON.stringify(value) + '\n');

try {
  // Tests run sesame on http://127.0.0.1; a real tool would refuse that.
  const config = await client.discovery(new URL(issuer), clientId, undefined, client.None(), {
    execute: [client.allowInsecureRequests],
  });
  const started = await client.initiateDeviceAuthorization(config, { scope: 'openid profile email offline_access' });
  print({
    user_code: started.user_code,
    verification_uri: started.verification_uri,
    verification_uri_complete: started.verification_uri_complete,
    interval: started.interval,
    expires_in: started.expires_in,
  });
  const tokens = await client.pollDeviceAuthorizationGrant(config, started);
  const claims = tokens.claims();
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  print({ sub: claims.sub, claims, userinfo, scope: tokens.scope, refresh_token: typeof tokens.refresh_token === 'string' });
} catch (e) {
  print({ error: `${e.name}: ${e.message}`, code: e.code ?? null, cause: e.cause?.error ?? null });
  process.exit(1);
}
