// Interoperability of tickstream's hand-written HS256 with a real JWT
// library, npm `jose` (no browser needed): tokens jose mints are accepted,
// and jose verifies the tokens `tickstream token` prints.
//
// Run (from the repo root):
//   cargo build --release && (cd tests/browser && npm ci)
//   TICKSTREAM_BIN=target/release/tickstream node tests/browser/jose.test.mjs

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

import { ROOT, atEnd, startServer, watchdog } from './harness.mjs';

// Without node_modules: a loud SKIPPED, or a failure under CI=true, as the
// harness does for Chromium.
let jose;
try {
  jose = await import('jose');
} catch (e) {
  const why = `jose is not installed (cd tests/browser && npm ci): ${e.code || e.message}`;
  const inCi = process.env.CI === 'true';
  process.stderr.write(inCi ? `\nFAILED: jose.test.mjs cannot run: ${why}\n` : `\n*** SKIPPED: jose.test.mjs not run: ${why} ***\n`);
  process.exit(inCi ? 1 : 0);
}
const { SignJWT, jwtVerify, decodeProtectedHeader } = jose;

watchdog(60_000);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tickstream-jose-'));
const secrets = ['first secret of the key file, 41 bytes..', 'second secret: another key of the file 01'];
const keyFile = path.join(dir, 'keys');
atEnd(() => fs.rmSync(dir, { recursive: true, force: true }));
fs.writeFileSync(keyFile, `# tickstream keys\n${secrets[0]}\n\n${secrets[1]}\n`);
const key = (n) => new TextEncoder().encode(secrets[n]);

/** GET `p` with these headers: the status, the headers, and the body's first `bytes` bytes. */
function get(server, p, headers, bytes = 1) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: server.host, port: server.port, path: p, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        body += chunk;
        if (body.length >= bytes) { req.destroy(); resolve({ status: res.statusCode, headers: res.headers, body }); }
      });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('error', (e) => { if (e.code !== 'ECONNRESET') reject(e); });
    req.setTimeout(10_000, () => req.destroy(new Error(`GET ${p}: no answer`)));
  });
}

/** The data lines of the events in a stream body. */
const events = (body) => body.split('\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6)));

test('tokens minted by jose are accepted, with their entitlements', async () => {
  const server = await startServer(['--addr', '127.0.0.1:0', '--interval', '50ms', '--quiet',
    '--auth-keys', keyFile, '--auth-audience', 'prices']);
  const mint = (claims, n = 0, alg = 'HS256') => new SignJWT(claims)
    .setProtectedHeader({ alg, typ: 'JWT' })
    .setIssuedAt()
    .setExpirationTime('2m')
    .setAudience(['other', 'prices'])
    .sign(key(n));

  // Signed with the file's second key, entitled to ETH only: the stream
  // without ?symbols= carries ETH alone.
  const eth = await mint({ sub: 'alice', symbols: ['ETH'] }, 1);
  const stream = await get(server, '/prices', { authorization: `Bearer ${eth}` }, 2000);
  assert.equal(stream.status, 200, stream.body);
  const got = events(stream.body);
  assert.ok(got.length >= 3, stream.body);
  assert.deepEqual([...new Set(got.map((e) => e.symbol))], ['ETH']);

  // In the cookie, and in the query.
  const cookie = await get(server, '/prices?symbols=ETH', { cookie: `theme=dark; tickstream_token=${eth}` }, 200);
  assert.equal(cookie.status, 200, cookie.body);
  const query = await get(server, `/prices?symbols=eth&access_token=${eth}`, {}, 200);
  assert.equal(query.status, 200, query.body);

  // Outside its symbols: 403.
  const btc = await get(server, '/prices?symbols=BTC', { authorization: `Bearer ${eth}` }, 1000);
  assert.equal(btc.status, 403, btc.body);
  assert.match(btc.headers['www-authenticate'], /error="insufficient_scope"/);

  // /metrics with the scope.
  const metrics = await get(server, '/metrics', { authorization: `Bearer ${await mint({ scope: 'read metrics' })}` }, 1e9);
  assert.equal(metrics.status, 200);
  assert.match(metrics.body, /tickstream_clients_connected/);

  // HS512 is refused, however valid its signature: the server picks the algorithm.
  const hs512 = await mint({ sub: 'mallory' }, 0, 'HS512');
  const refused = await get(server, '/prices', { authorization: `Bearer ${hs512}` }, 1000);
  assert.equal(refused.status, 401);
  assert.match(refused.headers['www-authenticate'], /error="invalid_token", error_description="malformed"/);

  // No aud, while the server checks it: refused.
  const noAud = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('2m').sign(key(0));
  const audience = await get(server, '/prices', { authorization: `Bearer ${noAud}` }, 1000);
  assert.equal(audience.status, 401);
  assert.match(audience.headers['www-authenticate'], /error_description="audience"/);
});

test('jose verifies the tokens tickstream token prints', async () => {
  const bin = path.resolve(ROOT, process.env.TICKSTREAM_BIN);
  const out = execFileSync(bin, ['token', '--auth-keys', keyFile, '--sub', 'bob', '--ttl', '5m',
    '--symbols', 'btc,ETH', '--throttle', '2s', '--scope', 'metrics', '--audience', 'prices'], { encoding: 'utf8' });
  assert.match(out, /^[\w-]+\.[\w-]+\.[\w-]+\n$/, 'one token and a newline');
  const token = out.trim();
  assert.deepEqual(decodeProtectedHeader(token), { alg: 'HS256', typ: 'JWT' });
  const { payload } = await jwtVerify(token, key(0), { algorithms: ['HS256'], audience: 'prices' });
  assert.equal(payload.sub, 'bob');
  assert.deepEqual(payload.symbols, ['BTC', 'ETH']);
  assert.equal(payload.throttle, '2s');
  assert.equal(payload.scope, 'metrics');
  assert.equal(payload.exp - payload.iat, 300);
  await assert.rejects(jwtVerify(token, key(1), { algorithms: ['HS256'] }), 'signed with the first key only');
});
