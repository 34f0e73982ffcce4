// End-to-end test of the live page (GET /, src/page.html) in a real browser.
//
// Starts the real tickstream binary ($TICKSTREAM_BIN) on 127.0.0.1:0, drives
// Debian's Chromium (/usr/bin/chromium) through playwright-core, and checks
// what a user sees: prices arriving and changing, the connection state in
// words, a server restart on the same port survived without a duplicate or
// backwards chart point, the 503-then-recover path, ?symbols= narrowing, the
// 360 px layout, dark mode, and that the page never reaches off-site.
//
// Run (from the repo root):
//   cargo build --release
//   (cd tests/browser && npm ci)
//   TICKSTREAM_BIN=target/release/tickstream node tests/browser/page.test.mjs
//
// Without Chromium or node_modules the browser tests are skipped with a loud
// "SKIPPED: ..." line on stderr (exit status 0),
// unless CI=true, where they fail. Screenshots go to
// target/screenshots/.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';

import { ROOT, SHOTS, browserTest, launch, newPage, startServer as start, stopServer, watchdog }
  from './harness.mjs';

const PAGE_FILE = path.join(ROOT, 'src/page.html');

// Chromium and playwright-core are checked by harness.mjs (a loud SKIPPED
// outside CI, a failure under CI=true), $TICKSTREAM_BIN when a server
// starts. The whole script has a minute; the server logs' tails are
// printed if it runs out.
watchdog(60_000);
let browser = null;

/** The server on `addr` with a 200 ms tick, then `extra` flags. */
const startServer = (addr, extra = []) => start(['--addr', addr, '--interval', '200ms', ...extra]);

/** Plain GET with a time limit; resolves {status, headers, body}. */
function get(url, { limitMs = 3000 } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.setTimeout(limitMs, () => req.destroy(new Error(`GET ${url}: no answer within ${limitMs} ms`)));
    req.on('error', reject);
  });
}

// ---- the "no external URL" rule ---------------------------------------------

/** Returns a list of offending snippets (empty when the HTML is self-contained). */
function externalRefs(html) {
  const rules = [
    [/\b(?:https?|wss?|ftp):\/\//gi, 'absolute URL'],
    [/\b(?:src|href|action|poster|srcset|data)\s*=\s*["']?\s*\/\//gi, 'protocol-relative src/href'],
    [/\b(?:src|href)\s*=\s*["']?(?!data:|#|["'\s>])/gi, 'src/href to a resource other than data:'],
    [/url\(\s*["']?(?!data:)/gi, 'CSS url() to a resource other than data:'],
    [/@import\b/gi, '@import'],
    [/["'`]\/\/[\w.-]+/g, 'protocol-relative string'],
    [/\b(?:importScripts|navigator\.sendBeacon|XMLHttpRequest|WebSocket)\b/g, 'other network API'],
  ];
  const found = [];
  for (const [re, what] of rules) {
    for (const m of html.matchAll(re)) {
      found.push(`${what}: ${JSON.stringify(html.slice(Math.max(0, m.index - 30), m.index + 50))}`);
    }
  }
  // The only URLs the script may open are /prices (EventSource and the
  // error-explaining fetch). Every string literal starting with "/" is checked.
  for (const m of html.matchAll(/["'`](\/[^"'`\s]*)["'`]/g)) {
    if (m[1] !== '/prices') found.push(`path literal other than /prices: ${m[1]}`);
  }
  return found;
}

test('page.html is self-contained (static check)', () => {
  const html = fs.readFileSync(PAGE_FILE, 'utf8');
  assert.deepEqual(externalRefs(html), []);
  // The rule itself catches what it should.
  for (const bad of ['<script src="https://cdn.example/x.js">', '<link href="//fonts.example/css">',
    'a { background: url(/img.png) }', '@import "x.css";', 'fetch("//evil.example/")']) {
    assert.notDeepEqual(externalRefs(bad), [], `rule misses ${bad}`);
  }
});

// ---- the browser scenarios --------------------------------------------------

/** Opens the page in a fresh context; records every request it makes. */
async function openPage(url, options = {}) {
  const page = await newPage(browser, options);
  await page.goto(url, { timeout: 5000 });
  return page;
}

/** The URLs the page requested. */
const requested = (page) => page.requests.map((r) => r.url());

const stateText = (page) => page.locator('#state').textContent();
const debug = (page) => page.evaluate(() => {
  const d = window.__tickstream;
  return { state: d.state, lastId: d.lastId, events: d.events, ignored: d.ignored, connects: d.connects, url: d.url };
});
const btcPoints = (page) => page.evaluate(() => window.__tickstream.points('BTC'));

/** Every request must stay on the page's origin and hit / or /prices. */
function assertOnlyOwnRequests(page, origin) {
  for (const u of requested(page)) {
    if (u.startsWith('data:')) continue;
    const url = new URL(u);
    assert.equal(url.origin, origin, `page requested another origin: ${u}`);
    assert.ok(url.pathname === '/' || url.pathname === '/prices', `page requested ${u}`);
  }
}

/** Ids strictly increase and timestamps never go back: no duplicate or backwards point. */
function assertMonotonic(points, what) {
  for (let i = 1; i < points.length; i++) {
    const [id0, ts0] = points[i - 1], [id1, ts1] = points[i];
    assert.ok(BigInt(id1) > BigInt(id0), `${what}: id ${id1} after ${id0} (duplicate or backwards)`);
    assert.ok(ts1 >= ts0, `${what}: ts ${ts1} after ${ts0} (backwards)`);
  }
}

browserTest('live page in Chromium', async (t) => {
  browser = await launch();
  let server = await startServer('127.0.0.1:0');
  const origin = `http://127.0.0.1:${server.port}`;

  await t.test('GET / serves page.html byte for byte, self-contained', async () => {
    const res = await get(server.url);
    assert.equal(res.status, 200);
    assert.match(res.headers['content-type'] || '', /^text\/html/);
    assert.equal(res.body, fs.readFileSync(PAGE_FILE, 'utf8'), 'served page differs from src/page.html (stale binary? cargo build --release)');
    assert.deepEqual(externalRefs(res.body), []);
  });

  const page = await openPage(server.url);

  await t.test('a BTC price shows within 3 s, changes on the next ticks, state reads "live"', async () => {
    const price = page.locator('.card[data-symbol="BTC"] .price');
    await page.waitForFunction(() => {
      const el = document.querySelector('.card[data-symbol="BTC"] .price');
      return el && /\d/.test(el.textContent);
    }, null, { timeout: 3000 });
    const first = await price.textContent();
    assert.match(first, /^\d{1,3}(?:[,.\s\u00a0\u202f]\d{3})*[.,]\d{2}$/, `BTC price text ${first}`);
    await page.waitForFunction((v) => document.querySelector('.card[data-symbol="BTC"] .price').textContent !== v,
      first, { timeout: 3000 });
    assert.equal(await stateText(page), 'live');
    assert.match(await page.locator('#age').textContent(), /^last event \d+ s ago$/);
    // Change since the previous tick: coloured AND signed with an arrow.
    const chg = page.locator('.card[data-symbol="BTC"] .chg');
    assert.match(await chg.textContent(), /^[\u25B2\u25BC\u25A0] [+\u2212]?[\d.,\s\u00a0\u202f]+ \([+\u2212]?\d+\.\d{2,4}%\)$/);
    // Every default symbol shows up, with real text and a drawn chart.
    await page.waitForFunction(() => document.querySelectorAll('.card').length >= 5, null, { timeout: 3000 });
    const syms = await page.locator('.card').evaluateAll((els) => els.map((e) => e.dataset.symbol));
    assert.deepEqual([...syms].sort(), ['BTC', 'DOGE', 'ETH', 'SOL', 'XRP']);
    const doge = await page.locator('.card[data-symbol="DOGE"] .price').textContent();
    assert.match(doge, /^0[.,]\d{6}$/, `DOGE price text ${doge}`);
    assert.match(await page.locator('.card[data-symbol="BTC"] canvas').getAttribute('aria-label'), /BTC price chart .* low .* high/);
  });

  let beforeKill;
  await t.test('server killed: state reads "reconnecting"', async () => {
    await page.waitForTimeout(1000);           // a few more points on the chart
    beforeKill = await debug(page);
    await stopServer(server);
    await page.waitForFunction(() => document.getElementById('state').textContent === 'reconnecting', null, { timeout: 5000 });
  });

  await t.test('server restarted on the same port: "live" again, new prices, no duplicate point', async () => {
    server = await startServer(`127.0.0.1:${new URL(origin).port}`);
    // The browser retries by itself after the server's retry hint (3 s by default).
    await page.waitForFunction(() => document.getElementById('state').textContent === 'live', null, { timeout: 10_000 });
    await page.waitForFunction((id) => BigInt(window.__tickstream.lastId) > BigInt(id), beforeKill.lastId, { timeout: 3000 });
    const firstAfter = await debug(page);
    await page.waitForFunction((n) => window.__tickstream.events >= n + 10, firstAfter.events, { timeout: 5000 });
    const after = await debug(page);
    assert.equal(after.state, 'live');
    assert.ok(BigInt(after.lastId) > BigInt(beforeKill.lastId));
    const pts = await btcPoints(page);
    assertMonotonic(pts, 'BTC chart');
    assert.ok(pts.some(([id]) => BigInt(id) > BigInt(beforeKill.lastId)), 'no BTC point from the new run');
    assert.ok(pts.some(([id]) => BigInt(id) <= BigInt(beforeKill.lastId)), 'the chart lost the points from before the restart');
    assert.equal(await page.locator('.card[data-symbol="BTC"]').getAttribute('data-last-id'),
      String(pts[pts.length - 1][0]));
    // Unfiltered, ids are consecutive within a run: the only jump is the restart.
    const { jumps, ignored } = await page.evaluate(() => window.__tickstream);
    assert.equal(jumps.length, 1, `id jumps: ${JSON.stringify(jumps)}`);
    assert.equal(jumps[0][0], beforeKill.lastId);
    assert.equal(ignored, 0, 'the server re-sent events at or below Last-Event-ID (page dropped them)');
  });

  await t.test('screenshots at 1280 px and 360 px; 360 px has no horizontal scroll', async () => {
    fs.mkdirSync(SHOTS, { recursive: true });
    await page.waitForTimeout(1500);
    await page.screenshot({ path: path.join(SHOTS, 'page-desktop.png') });

    const narrow = await openPage(server.url, { viewport: { width: 360, height: 780 } });
    await narrow.waitForFunction(() => document.querySelectorAll('.card .chg.up, .card .chg.down').length >= 3, null, { timeout: 5000 });
    await narrow.waitForTimeout(1500);
    const overflow = await narrow.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(overflow <= 360, `page is ${overflow} px wide at a 360 px viewport`);
    await narrow.screenshot({ path: path.join(SHOTS, 'page-360.png'), fullPage: true });
    assertOnlyOwnRequests(narrow, origin);
    assert.deepEqual(narrow.errors, []);
    await narrow.context().close();
  });

  await t.test('dark colour scheme is followed', async () => {
    const light = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    const dark = await openPage(server.url, { colorScheme: 'dark' });
    await dark.waitForFunction(() => document.querySelectorAll('.card .chg.up, .card .chg.down').length >= 3, null, { timeout: 5000 });
    const bg = await dark.evaluate(() => getComputedStyle(document.body).backgroundColor);
    const lum = (c) => c.match(/\d+/g).slice(0, 3).map(Number).reduce((a, b) => a + b, 0);
    assert.ok(lum(bg) < 150 && lum(light) > 600, `backgrounds: light ${light}, dark ${bg}`);
    await dark.waitForTimeout(1000);
    await dark.screenshot({ path: path.join(SHOTS, 'page-desktop-dark.png') });
    await dark.context().close();
  });

  await t.test('?symbols=eth,btc narrows the stream, in the order given', async () => {
    const narrowed = await openPage(server.url + '?symbols=eth,btc');
    await narrowed.waitForFunction(() => window.__tickstream.events >= 6, null, { timeout: 3000 });
    const syms = await narrowed.locator('.card').evaluateAll((els) => els.map((e) => e.dataset.symbol));
    assert.deepEqual(syms, ['ETH', 'BTC']);
    assert.ok(requested(narrowed).some((u) => u.endsWith('/prices?symbols=ETH,BTC')), requested(narrowed).join('\n'));
    await narrowed.context().close();
  });

  await t.test('the page only ever talked to its own / and /prices, without errors', () => {
    assertOnlyOwnRequests(page, origin);
    assert.deepEqual(page.errors.filter((e) => !/ERR_CONNECTION_REFUSED|net::ERR_/.test(e)), []);
  });
  await page.context().close();
  await stopServer(server);
});

browserTest('503 when full: the page says "reconnecting" and why, then recovers on its own', async () => {
  const server = await startServer('127.0.0.1:0', ['--max-clients', '1']);
  // Hold the only stream slot with a plain client.
  const holder = http.get(server.url + 'prices');
  const [res] = await once(holder, 'response');
  assert.equal(res.statusCode, 200);
  res.resume();

  const page = await openPage(server.url);
  await page.waitForFunction(() => document.getElementById('state').textContent === 'reconnecting', null, { timeout: 5000 });
  // EventSource gives up for good on a non-200 answer; the page must replace it.
  await page.waitForFunction(() => /503/.test(document.getElementById('notice').textContent), null, { timeout: 5000 });

  holder.destroy();
  await page.waitForFunction(() => document.getElementById('state').textContent === 'live', null, { timeout: 8000 });
  await page.waitForFunction(() => window.__tickstream.events >= 5, null, { timeout: 3000 });
  const d = await debug(page);
  assert.ok(d.connects >= 2, `the page did not create a new EventSource (connects=${d.connects})`);
  assert.equal(await page.locator('#notice').textContent(), '');
  assertMonotonic(await btcPoints(page), 'BTC chart');
  await page.context().close();
  await stopServer(server);
});

/**
 * A TCP proxy between the browser and the server, so a test can cut the
 * page's stream while the server keeps running, or answer 503 itself.
 */
async function startProxy(targetPort) {
  const p = { mode: 'pass', heads: [], refused: 0, sockets: new Set() };
  p.server = net.createServer((client) => {
    p.sockets.add(client);
    client.on('close', () => p.sockets.delete(client));
    client.on('error', () => {});
    client.once('data', (first) => {
      p.heads.push(first.toString('latin1').split('\r\n\r\n')[0]);
      if (p.mode === 'refuse') {
        p.refused++;
        const body = 'proxy: refusing on purpose\n';
        client.end(`HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
        return;
      }
      const upstream = net.connect(targetPort, '127.0.0.1');
      p.sockets.add(upstream);
      upstream.on('close', () => { p.sockets.delete(upstream); client.destroy(); });
      upstream.on('error', () => client.destroy());
      client.on('close', () => upstream.destroy());
      upstream.write(first);
      client.pipe(upstream);
      upstream.pipe(client);
    });
  });
  p.server.listen(0, '127.0.0.1');
  await once(p.server, 'listening');
  p.url = `http://127.0.0.1:${p.server.address().port}/`;
  p.cut = () => { for (const s of p.sockets) s.destroy(); };
  p.close = () => { p.cut(); p.server.close(); };
  return p;
}

browserTest('dropped stream resumes with no gap and no duplicate (Last-Event-ID, then ?lastEventId= after a 503)', async () => {
  const server = await startServer('127.0.0.1:0', ['--retry', '1s']);
  const proxy = await startProxy(server.port);
  try {
    const page = await openPage(proxy.url);
    const waitState = (s, timeout) => page.waitForFunction((x) => window.__tickstream.state === x, s, { timeout });
    await page.waitForFunction(() => window.__tickstream.events >= 15, null, { timeout: 5000 });

    // 1. The connection drops; the browser reconnects by itself with Last-Event-ID.
    proxy.cut();
    await waitState('reconnecting', 3000);
    await waitState('live', 5000);
    const d1 = await debug(page);
    await page.waitForFunction((n) => window.__tickstream.events >= n + 10, d1.events, { timeout: 5000 });
    assert.ok(proxy.heads.some((h) => /^GET \/prices HTTP\/1\.1\r\n/.test(h) && /\r\nLast-Event-ID: \d+(\r\n|$)/i.test(h)),
      `no automatic reconnect with Last-Event-ID:\n${proxy.heads.join('\n---\n')}`);

    // 2. The stream is refused (non-200): EventSource gives up, the page makes
    //    a new one, which must carry the last id in the query.
    proxy.mode = 'refuse';
    proxy.cut();
    await page.waitForFunction(() => /503/.test(document.getElementById('notice').textContent), null, { timeout: 6000 });
    assert.equal(await stateText(page), 'reconnecting');
    const held = await debug(page);
    proxy.mode = 'pass';
    await waitState('live', 6000);
    await page.waitForFunction((n) => window.__tickstream.events >= n + 10, held.events, { timeout: 5000 });
    assert.ok(proxy.heads.some((h) => h.startsWith(`GET /prices?lastEventId=${held.lastId} HTTP/1.1\r\n`)),
      `no new EventSource with ?lastEventId=${held.lastId}:\n${proxy.heads.map((h) => h.split('\r\n')[0]).join('\n')}`);

    const end = await page.evaluate(() => window.__tickstream);
    assert.deepEqual(end.jumps, [], 'ids not consecutive across the resumes (gap)');
    assert.equal(end.ignored, 0, 'the server re-sent events at or below the resume id (page dropped them)');
    assertMonotonic(await btcPoints(page), 'BTC chart');
    assert.equal(await page.locator('#notice').textContent(), '');
    await page.context().close();
  } finally {
    proxy.close();
    await stopServer(server);
  }
});
