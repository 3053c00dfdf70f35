// Pre-generates DPoP proofs for the `client_credentials ES256 + DPoP` scenario: each proof may be
// used once (its jti), so wrk cannot make them. One ES256 key, COUNT proofs for HTU, spread over
// THREADS files (one per wrk thread), one proof a line.
//
//   node dpop_proofs.mjs HTU COUNT THREADS OUT_PREFIX
import { generateKeyPairSync, sign, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';

const [htu, count, threads, prefix] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4]), process.argv[5]];
const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const { kty, crv, x, y } = publicKey.export({ format: 'jwk' });
const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
const header = b64({ typ: 'dpop+jwt', alg: 'ES256', jwk: { kty, crv, x, y } });
const iat = Math.floor(Date.now() / 1000);
const files = Array.from({ length: threads }, (_, i) => createWriteStream(`${prefix}${i}.txt`));
for (let i = 0; i < count; i++) {
  const input = `${header}.${b64({ jti: randomBytes(12).toString('base64url'), htm: 'POST', htu, iat })}`;
  const signature = sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url');
  files[i % threads].write(`${input}.${signature}\n`);
}
await Promise.all(files.map((f) => new Promise((done) => f.end(done))));
