// The live page's duplicate check and restart detection with both id forms
// (README, "The stream"): a decimal counter, and a Redis stream entry id MS-SEQ
// ordered by its two numbers. src/page.html runs in Chromium against a
// scripted stream: a Node server serves the file at / and holds /prices
// open, and the test writes the frames it wants. Ids past 2^53, where two
// of them would be one Number, must stay apart; a SEQ with more digits is
// the newer (a string compare says otherwise); a repeated or older id is
// dropped; ids that stay old for ID_RESET_MS (10 s, fast-forwarded on the
// page's clock) start the chart over.
//
// Run: (cd tests/browser && npm ci) && node tests/browser/ids.test.mjs

import assert from 'node:assert/strict';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

import { ROOT, atEnd, browserTest, launch, newPage, pageState, watchdog } from './harness.mjs';

watchdog(60_000);

/** A server of src/page.html whose /prices streams the test writes itself. */
async function scriptedServer() {
  const page = fs.readFileSync(path.join(ROOT, 'src/page.html'));
  const streams = [];
  const arrivals = [];
  const server = http.createServer((req, res) => {
    const { pathname } = new URL(req.url, 'http://local');
    if (pathname === '/') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(page);
    } else if (pathname === '/prices') {
      res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache' });
      res.write('retry: 200\n\n');
      streams.push({ req, res });
      arrivals.splice(0).forEach((wake) => wake());
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  atEnd(() => { streams.forEach((s) => s.res.destroy()); server.close(); });
  return {
    url: `http://127.0.0.1:${server.address().port}/`,
    /** The `n`th request for /prices (1 is the first), once it has come. */
    async stream(n) {
      while (streams.length < n) await new Promise((wake) => arrivals.push(wake));
      return streams[n - 1];
    },
  };
}

let ts = Date.now();
const frame = (id, price) => `id: ${id}\ndata: {"symbol":"BTC","price":${price},"ts":${ts += 100}}\n\n`;

/** Writes [id, price] events; waits until the page has taken or dropped them all. */
async function send(page, stream, events) {
  const before = await pageState(page);
  stream.res.write(events.map(([id, price]) => frame(id, price)).join(''));
  await page.waitForFunction((n) => window.__tickstream.events + window.__tickstream.ignored >= n,
    before.events + before.ignored + events.length, { timeout: 3000 });
}

const points = (page) => page.evaluate(() => window.__tickstream.points('BTC').map(([id, , price]) => [id, price]));

// Each form: events in order, each marked drawn (true) or dropped (false);
// the jumps the page records; two old ids for the restart and one after.
const FORMS = {
  'stream ids MS-SEQ': {
    events: [
      ['1700000000000-9', 1, true],
      ['1700000000000-10', 2, true],              // more SEQ digits: newer
      ['1700000000000-10', 3, false],             // repeated
      ['1700000000000-3', 4, false],              // older
      ['9007199254740992-0', 5, true],
      ['9007199254740993-0', 6, true],            // the same Number as the one before
      ['9007199254740993-0', 7, false],
      ['9007199254740993-18446744073709551615', 8, true],
      ['9007199254740994-0', 9, true],            // a larger MS beats any SEQ
    ],
    jumps: [],                                    // stream ids have gaps by design
    old: ['1700000000000-1', '1700000000000-2'],
    next: '1700000000000-3',
  },
  'decimal counter': {
    events: [
      ['9007199254740990', 1, true],
      ['9007199254740991', 2, true],
      ['9007199254740992', 3, true],
      ['9007199254740993', 4, true],              // the same Number as the one before
      ['9007199254740993', 5, false],
      ['9007199254740990', 6, false],
      ['9007199254741000', 7, true],              // a jump forward: a restarted server
    ],
    jumps: [['9007199254740993', '9007199254741000']],
    old: ['1000', '1001'],
    next: '1002',
  },
};

browserTest('the page orders both id forms exactly, drops repeats, and detects a restart', async (t) => {
  const browser = await launch();
  for (const [form, c] of Object.entries(FORMS)) {
    await t.test(form, async () => {
      const server = await scriptedServer();
      const page = await newPage(browser);
      await page.clock.install();
      await page.goto(server.url, { timeout: 5000 });
      const first = await server.stream(1);

      await send(page, first, c.events.map(([id, price]) => [id, price]));
      const drawn = c.events.filter(([, , d]) => d).map(([id, price]) => [id, price]);
      assert.deepEqual(await points(page), drawn);
      const s = await pageState(page);
      assert.equal(s.ignored, c.events.length - drawn.length, 'repeated and older ids dropped');
      assert.equal(s.lastId, drawn.at(-1)[0]);
      assert.deepEqual(s.jumps, c.jumps);
      assert.equal(s.state, 'live');

      // The stream breaks: the browser reconnects by itself with the last id.
      first.res.destroy();
      const second = await server.stream(2);
      assert.equal(second.req.headers['last-event-id'], drawn.at(-1)[0]);

      // Old ids: dropped as a replay at first; still old after ID_RESET_MS,
      // they mean the ids went back for good, and the chart starts over.
      await send(page, second, [[c.old[0], 10]]);
      assert.equal((await pageState(page)).ignored, s.ignored + 1);
      await page.clock.fastForward(11_000);
      await send(page, second, [[c.old[1], 11], [c.next, 12]]);
      assert.deepEqual(await points(page), [[c.old[1], 11], [c.next, 12]]);
      const after = await pageState(page);
      assert.equal(after.lastId, c.next);
      assert.equal(after.ignored, s.ignored + 1);
      assert.equal(await page.locator('.card[data-symbol="BTC"]').getAttribute('data-last-id'), c.next);
      // Cutting the stream is the one network error there is.
      assert.deepEqual(page.errors.filter((e) => !/net::ERR_INCOMPLETE_CHUNKED_ENCODING/.test(e)), []);
      await page.context().close();
    });
  }
});
