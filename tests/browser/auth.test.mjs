// The live page with access control (--auth-keys), in Chromium: with
// ?access_token= on the page's URL, with the tickstream_token cookie, and
// refused (no token, a token for other symbols), where it must say "not
// authorized" and stop reconnecting.
//
// Run (from the repo root):
//   cargo build --release && (cd tests/browser && npm ci)
//   TICKSTREAM_BIN=target/release/tickstream node tests/browser/auth.test.mjs

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { ROOT, SHOTS, atEnd, browserTest, launch, newPage, startServer, watchdog } from './harness.mjs';

watchdog(60_000);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tickstream-page-auth-'));
const keyFile = path.join(dir, 'keys');
atEnd(() => fs.rmSync(dir, { recursive: true, force: true }));
fs.writeFileSync(keyFile, 'the secret of the page test, 40 bytes...\n');
const token = (...args) => execFileSync(path.resolve(ROOT, process.env.TICKSTREAM_BIN),
  ['token', '--auth-keys', keyFile, '--ttl', '5m', ...args], { encoding: 'utf8' }).trim();

const state = (page) => page.evaluate(() => document.getElementById('state').textContent);
const livePrices = (page) => page.waitForFunction(() => window.__tickstream.events >= 4
  && document.getElementById('state').textContent === 'live', null, { timeout: 5000 });

browserTest('the page with a token in its URL, in its cookie, and refused', async () => {
  const server = await startServer(['--addr', '127.0.0.1:0', '--interval', '100ms', '--quiet',
    '--auth-keys', keyFile]);
  const browser = await launch();

  // ?access_token= on the page: passed on to the stream.
  const byQuery = await newPage(browser);
  const btc = token('--symbols', 'BTC');
  await byQuery.goto(`${server.url}?access_token=${btc}`);
  await livePrices(byQuery);
  const cards = await byQuery.evaluate(() => [...document.querySelectorAll('.card')].map((c) => c.dataset.symbol));
  assert.deepEqual(cards, ['BTC'], 'only the token\'s symbols');
  fs.mkdirSync(SHOTS, { recursive: true });
  await byQuery.screenshot({ path: path.join(SHOTS, 'page-token.png') });

  // The cookie, as a site's backend would set it: sent by the browser itself.
  const byCookie = await newPage(browser);
  await byCookie.context().addCookies([{ name: 'tickstream_token', value: token(), url: server.url,
    httpOnly: true, sameSite: 'Strict' }]);
  await byCookie.goto(server.url);
  await livePrices(byCookie);
  assert.ok(!(await byCookie.evaluate(() => window.__tickstream.url)).includes('access_token'));

  // Refused: no token, and a token for a symbol the page asks outside of.
  for (const url of [server.url, `${server.url}?symbols=ETH&access_token=${btc}`]) {
    const refused = await newPage(browser);
    await refused.goto(url);
    await refused.waitForFunction(() => document.getElementById('state').textContent === 'not authorized',
      null, { timeout: 10_000 });
    assert.match(await refused.evaluate(() => document.getElementById('notice').textContent), /40[13]/);
    // It stays there: no new EventSource after the refusal (the page would
    // retry after 3 s otherwise).
    const connects = await refused.evaluate(() => window.__tickstream.connects);
    await new Promise((r) => setTimeout(r, 4000));
    assert.equal(await refused.evaluate(() => window.__tickstream.connects), connects);
    assert.equal(await state(refused), 'not authorized');
  }
  assert.ok(!server.log.join('\n').includes(btc.split('.')[2]), 'no token in the log');
});
