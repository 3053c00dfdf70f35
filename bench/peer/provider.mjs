// node-oidc-provider configured for the same work as sesame in the benchmark: a
// client_credentials client with RS256 / ES256 / EdDSA JWT access tokens (resource indicators),
// introspection and revocation on, a web client for the code + PKCE round, a client whose refresh
// tokens rotate at every use, a tls_client_auth client (mTLS behind a TLS-terminating proxy that
// passes the certificate on in a header, when CLIENT_CA_FILE is set), in-memory storage.
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import Provider from 'oidc-provider';
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';
import LRU from 'oidc-provider/lib/helpers/lru.js';

// Its in-memory adapter, with room for ten million entries: the default one is an LRU of 1,000,
// and a benchmark run makes far more tokens than that, which pushed out the session the code
// round uses (its rounds then ended at the sign-in page) and the refresh token introspected.
// sesame's stores keep everything until it expires.
const store = new LRU({ maxSize: 10_000_000 });
const adapter = (model) => new MemoryAdapter(model, store);

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const secret = process.env.CLIENT_SECRET;
const jwk = (type, opts, alg) => ({ ...generateKeyPairSync(type, opts).privateKey.export({ format: 'jwk' }), alg, use: 'sig', kid: alg });
const keys = [jwk('rsa', { modulusLength: 2048 }, 'RS256'), jwk('ec', { namedCurve: 'P-256' }, 'ES256'), jwk('ed25519', {}, 'EdDSA')];
// mTLS as sesame does it behind a proxy: the certificate from the header, checked here against the
// client CA (issuer, signature, validity) and the registered subject DN.
const clientCa = process.env.CLIENT_CA_FILE ? new X509Certificate(readFileSync(process.env.CLIENT_CA_FILE)) : null;
const certHeader = (process.env.MTLS_HEADER || 'x-ssl-client-cert').toLowerCase();
const certificate = (ctx) => {
  if (ctx.state.clientCertificate === undefined) {
    const escaped = ctx.get(certHeader);
    ctx.state.clientCertificate = escaped ? new X509Certificate(decodeURIComponent(escaped)) : null;
  }
  return ctx.state.clientCertificate;
};
const dnParts = (dn) => dn.split(/[,\n]/).map((p) => p.trim().toLowerCase()).filter(Boolean).sort().join(',');
const algForResource = { 'https://api.example.com/': 'RS256', 'https://api-es256.example.com/': 'ES256', 'https://api-eddsa.example.com/': 'EdDSA' };

const provider = new Provider(issuer, {
  adapter,
  clients: [
    { client_id: 'bench-cc', client_secret: secret, grant_types: ['client_credentials'], response_types: [], redirect_uris: [], scope: 'api:read' },
    { client_id: 'bench-rs', client_secret: secret, grant_types: ['client_credentials'], response_types: [], redirect_uris: [] },
    { client_id: 'bench-web', client_secret: secret, grant_types: ['authorization_code', 'refresh_token'], redirect_uris: ['http://127.0.0.1:9/cb'] },
    { client_id: 'bench-offline', client_secret: secret, grant_types: ['authorization_code', 'refresh_token'], redirect_uris: ['http://127.0.0.1:9/cb'] },
    ...(clientCa ? [{
      client_id: 'bench-mtls', token_endpoint_auth_method: 'tls_client_auth', tls_client_auth_subject_dn: process.env.MTLS_SUBJECT_DN,
      tls_client_certificate_bound_access_tokens: true, grant_types: ['client_credentials'], response_types: [], redirect_uris: [], scope: 'api:read',
    }] : []),
  ],
  // Refresh tokens for bench-offline only, whatever the scope (sesame's offline client gets one
  // at every code redemption), rotated at every use as sesame does.
  clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'none', ...(clientCa ? ['tls_client_auth'] : [])],
  issueRefreshToken: async (ctx, client) => client.clientId === 'bench-offline',
  rotateRefreshToken: true,
  jwks: { keys },
  cookies: { keys: ['bench-only-cookie-key'] },
  scopes: ['openid', 'offline_access', 'api:read'],
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    mTLS: {
      enabled: !!clientCa,
      tlsClientAuth: true,
      certificateBoundAccessTokens: true,
      getCertificate: certificate,
      certificateAuthorized: (ctx) => {
        const cert = certificate(ctx);
        const now = Date.now();
        return !!cert && cert.checkIssued(clientCa) && cert.verify(clientCa.publicKey)
          && Date.parse(cert.validFrom) <= now && now < Date.parse(cert.validTo);
      },
      certificateSubjectMatches: (ctx, property, expected) => property === 'tls_client_auth_subject_dn'
        && dnParts(certificate(ctx).subject) === dnParts(expected),
    },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'https://api.example.com/',
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource) => ({
        scope: 'api:read',
        audience: resource,
        accessTokenTTL: 900,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: algForResource[resource] ?? 'RS256' } },
      }),
    },
  },
  // The bench user has consented once and for all, as sesame's first-party clients have.
  loadExistingGrant: async (ctx) => {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid');
    await grant.save();
    ctx.oidc.session.ensureClientContainer(ctx.oidc.client.clientId);
    ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId, grant.jti);
    return grant;
  },
  findAccount: (ctx, id) => ({ accountId: id, claims: () => ({ sub: id }) }),
  ttl: { AccessToken: 900, ClientCredentials: 900, AuthorizationCode: 60, Session: 86400, Interaction: 600, Grant: 86400, IdToken: 900 },
});
provider.listen(port, '127.0.0.1', () => console.log(`listening on ${issuer}`));
