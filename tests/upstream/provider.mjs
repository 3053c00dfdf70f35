// node-oidc-provider as the upstream identity provider of the integration tests
// (tests/it/upstream_node.rs): its own sign-in and consent pages (devInteractions: any password),
// people with email and groups claims.
//
// It listens on 127.0.0.1, on a port the system picks, and prints {"issuer": ...}; then it reads
// one JSON line on stdin, {"client_id", "client_secret", "redirect_uri"} (sesame's callback URL is
// known only once sesame runs, and sesame needs the issuer first), and prints {"ready": true}.
//
//   node tests/upstream/provider.mjs PATH_TO_NODE_MODULES
import http from 'node:http';
import path from 'node:path';
import readline from 'node:readline';
import { pathToFileURL } from 'node:url';

const modules = process.argv[2];
const { default: Provider } = await import(pathToFileURL(path.join(modules, 'oidc-provider', 'lib', 'index.js')).href);

const people = {
  ada: { email: 'ada@corp.example', email_verified: true, preferred_username: 'ada', name: 'Ada Lovelace', groups: ['engineering', 'sesame-admins'] },
  eve: { email: 'eve@evil.example', email_verified: true, preferred_username: 'eve', name: 'Eve', groups: [] },
};

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;
console.log(JSON.stringify({ issuer }));

const lines = readline.createInterface({ input: process.stdin });
const client = JSON.parse(await new Promise((resolve) => lines.once('line', resolve)));

const provider = new Provider(issuer, {
  clients: [{
    client_id: client.client_id,
    client_secret: client.client_secret,
    redirect_uris: [client.redirect_uri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
    groups: ['groups'],
  },
  findAccount: async (ctx, id) => people[id] && ({ accountId: id, claims: async () => ({ sub: id, ...people[id] }) }),
  pkce: { required: () => true },
  cookies: { keys: ['sesame-tests-only'] },
  features: { devInteractions: { enabled: true } },
});
// Its warnings about development-only settings are expected here.
provider.on('server_error', (ctx, err) => console.error('server_error', err));
server.on('request', provider.callback());
console.log(JSON.stringify({ ready: true }));
