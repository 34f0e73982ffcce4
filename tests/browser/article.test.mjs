// A page written the way the seed article writes its client (README, "The
// article's dialect"), in Chromium: an EventSource on /crypto-price, a
// "price-update" listener that reads JSON.parse(e.data).data. The page comes
// from another origin (a Node server), as the article's page does, so the
// stream crosses origins on tickstream's Access-Control-Allow-Origin: *.
// It must show at least three different prices.
//
// Run (from the repo root):
//   cargo build --release && (cd tests/browser && npm ci)
//   TICKSTREAM_BIN=target/release/tickstream node tests/browser/article.test.mjs

import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';

import { atEnd, browserTest, launch, newPage, startServer, watchdog } from './harness.mjs';

watchdog(60_000);

/** The article's client page, pointed at `streamUrl`. */
const articlePage = (streamUrl) => `<!doctype html>
<html>
<head><meta charset="utf-8"><title>Live crypto price</title></head>
<body>
  <h1>Live crypto price</h1>
  <div id="price">waiting for a price</div>
  <script>
    const eventSource = new EventSource(${JSON.stringify(streamUrl)});
    eventSource.addEventListener("price-update", (e) => {
      const parsedData = JSON.parse(e.data);
      document.getElementById("price").textContent = parsedData.data;
      (window.prices = window.prices || []).push(parsedData.data);
    });
  </script>
</body>
</html>
`;

browserTest('a page written the article\'s way shows the price changing', async () => {
  const server = await startServer(['--addr', '127.0.0.1:0', '--interval', '100ms', '--quiet']);
  const streamUrl = new URL('crypto-price', server.url).href;
  const site = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(articlePage(streamUrl));
  });
  site.listen(0, '127.0.0.1');
  await once(site, 'listening');
  atEnd(() => site.close());

  const browser = await launch();
  const page = await newPage(browser);
  await page.goto(`http://127.0.0.1:${site.address().port}/`, { timeout: 5000 });
  await page.waitForFunction(() => new Set(window.prices || []).size >= 3, null, { timeout: 5000 });
  const prices = await page.evaluate(() => window.prices);
  assert.ok(prices.every((p) => typeof p === 'number' && p > 0), `prices: ${prices}`);
  const shown = await page.locator('#price').textContent();
  assert.ok(Number(shown) > 0, `the page shows ${JSON.stringify(shown)}`);
  assert.ok(page.requests.some((r) => r.url() === streamUrl), page.requests.map((r) => r.url()).join('\n'));
  assert.deepEqual(page.errors, []);
  await page.context().close();
});
