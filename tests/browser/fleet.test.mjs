// The live page through nginx in front of three replicas, in Chromium, while
// the replica its stream is on is killed with SIGKILL (README "Scaling out").
// The browser reconnects through nginx with Last-Event-ID, another replica
// takes over, and the chart stays continuous: each symbol's points are
// exactly that symbol's entries of the Redis stream between its first and
// last point (no gap, no duplicate, never backwards), and the page is "live"
// again.
//
// tests/it/fleet.rs starts the fleet and runs this script with:
//   FLEET_URL         the page through nginx
//   FLEET_REPLICAS    ADDR=PID of each replica, comma-separated
//   FLEET_REDIS_PORT  the Redis port (redis-cli reads the stream)

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

import { SHOTS, browserTest, idOrder, launch, newPage, pageState, watchdog } from './harness.mjs';

const { FLEET_URL, FLEET_REPLICAS, FLEET_REDIS_PORT } = process.env;
if (!FLEET_URL || !FLEET_REPLICAS || !FLEET_REDIS_PORT) {
  process.stderr.write('error: run from tests/it/fleet.rs (cargo test --test it fleet), which sets FLEET_*\n');
  process.exit(2);
}
const REPLICAS = FLEET_REPLICAS.split(',').map((r) => {
  const [addr, pid] = r.split('=');
  return { addr, pid: Number(pid) };
});
const KEY = 'tickstream:prices';

watchdog(60_000);

/** One sample of a replica's /metrics, asked directly (nginx denies it). */
function metric(addr, name) {
  return new Promise((resolve, reject) => {
    const req = http.get(`http://${addr}/metrics`, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => {
        const line = body.split('\n').find((l) => l.startsWith(name + ' '));
        if (line) resolve(Number(line.slice(name.length + 1))); else reject(new Error(`no ${name} at ${addr}`));
      });
    });
    req.setTimeout(3000, () => req.destroy(new Error(`GET http://${addr}/metrics: no answer`)));
    req.on('error', reject);
  });
}

/** Entries of the stream, [{id, symbol, price}], from `first` to `last` (both included). */
function xrange(first, last) {
  const out = execFileSync('redis-cli', ['-h', '127.0.0.1', '-p', FLEET_REDIS_PORT, 'XRANGE', KEY, first, last],
    { encoding: 'utf8' });
  // redis-cli prints each entry's id, then its field and value lines.
  const entries = [];
  for (const line of out.split('\n')) {
    if (/^\d+-\d+$/.test(line)) entries.push({ id: line, fields: [] });
    else if (line !== '' && entries.length) entries.at(-1).fields.push(line);
  }
  return entries.map(({ id, fields }) => {
    const get = (f) => fields[fields.indexOf(f) + 1];
    return { id, symbol: get('symbol'), price: Number(get('price')) };
  });
}

const newestId = () => execFileSync('redis-cli',
  ['-h', '127.0.0.1', '-p', FLEET_REDIS_PORT, 'XREVRANGE', KEY, '+', '-', 'COUNT', '1'], { encoding: 'utf8' })
  .split('\n')[0];

/** Polls `check` every 50 ms for up to `ms`; its last truthy value, or a failure naming `what`. */
async function waitFor(what, ms, check) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    assert.ok(Date.now() < end, `${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

browserTest('the page through nginx keeps a continuous chart when its replica is SIGKILLed', async () => {
  const browser = await launch();
  const page = await newPage(browser);
  await page.goto(FLEET_URL, { timeout: 5000 });
  await page.waitForFunction(() => window.__tickstream.events >= 20 && window.__tickstream.state === 'live',
    null, { timeout: 5000 });

  // The replica that holds the page's one stream.
  const victim = await waitFor('a single replica holding the stream', 5000, async () => {
    const counts = await Promise.all(REPLICAS.map((r) => metric(r.addr, 'tickstream_clients_connected')));
    return counts.reduce((a, b) => a + b, 0) === 1 && REPLICAS[counts.indexOf(1)];
  });
  const before = await pageState(page);
  process.kill(victim.pid, 'SIGKILL');
  // Read after the kill: every event the victim sent is at or below it.
  const newest = newestId();

  // Two seconds of entries (40 a second) past the newest at the kill.
  await page.waitForFunction(([n, events]) => window.__tickstream.events >= events && window.__tickstream.state === 'live',
    [newest, before.events + 80], { timeout: 10_000 });
  const after = await pageState(page);
  assert.ok(idOrder(after.lastId) > idOrder(newest), `${after.lastId} is not past ${newest}`);
  assert.equal(after.ignored, 0, 'a replica re-sent ids at or below Last-Event-ID (the page dropped them)');
  assert.deepEqual(after.jumps, []);

  // The browser itself reconnected, sending the last id it had.
  const streams = page.requests.filter((r) => new URL(r.url()).pathname === '/prices');
  assert.ok(streams.length >= 2, `requests for /prices: ${streams.length}`);
  const resumed = await streams[1].allHeaders();
  assert.match(resumed['last-event-id'] || '', /^\d+-\d+$/, JSON.stringify(resumed));
  assert.ok(idOrder(resumed['last-event-id']) <= idOrder(newest));

  for (const symbol of ['BTC', 'ETH']) {
    const points = await page.evaluate((s) => window.__tickstream.points(s), symbol);
    for (let i = 1; i < points.length; i++) {
      assert.ok(idOrder(points[i][0]) > idOrder(points[i - 1][0]), `${symbol}: ${points[i][0]} after ${points[i - 1][0]}`);
    }
    const stored = xrange(points[0][0], points.at(-1)[0]).filter((e) => e.symbol === symbol);
    assert.deepEqual(points.map(([id, , price]) => [id, price]), stored.map((e) => [e.id, e.price]),
      `${symbol}: the chart's points are not exactly the stream's entries`);
    assert.ok(points.some(([id]) => idOrder(id) < idOrder(resumed['last-event-id'])), `${symbol}: no point from before the kill`);
    assert.ok(points.some(([id]) => idOrder(id) > idOrder(newest)), `${symbol}: no point from after the kill`);
    process.stdout.write(`# ${symbol}: ${points.length} points, exactly the stream's from ${points[0][0]} to ${points.at(-1)[0]}\n`);
  }
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, 'page-fleet.png') });
  // The one network error is the stream the kill cut.
  assert.deepEqual(page.errors.filter((e) => !/net::ERR_/.test(e)), []);
  await page.context().close();
});
