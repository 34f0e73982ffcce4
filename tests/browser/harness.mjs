// What the browser scripts share: the prerequisite check (Chromium and playwright-core; without them a loud SKIPPED, or a
// failure under CI=true), a watchdog over the whole script, Chromium's
// launch, a page that records its requests and errors, the tickstream binary
// as a child process, and the id order of both id forms.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const SHOTS = path.join(ROOT, 'target/screenshots');
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const IN_CI = process.env.CI === 'true';

// ---- prerequisites: never pass silently ------------------------------------

let chromium, missing = null;
if (!fs.existsSync(CHROMIUM)) {
  missing = `${CHROMIUM} is missing (apt-get install -y chromium)`;
} else {
  try {
    ({ chromium } = await import('playwright-core'));
  } catch (e) {
    missing = `playwright-core is not installed (cd tests/browser && npm ci): ${e.code || e.message}`;
  }
}
const script = path.basename(process.argv[1] || 'browser test');
if (missing && IN_CI) {
  process.stderr.write(`\nFAILED: ${script} cannot run: ${missing} (CI=true, so this is an error)\n\n`);
  process.exitCode = 1;
} else if (missing) {
  process.stderr.write(`\n*** SKIPPED: ${script} not run: ${missing} ***\n\n`);
}

/** A test that is skipped (loudly, above) outside CI and fails in CI without its tools. */
export const browserTest = (name, fn) => test(name, missing && !IN_CI ? { skip: missing } : {},
  missing ? () => assert.fail(`cannot run: ${missing}`) : fn);

// ---- bounded time and cleanup ----------------------------------------------

const children = new Set();   // child processes this script started
const servers = new Set();    // the tickstream ones among them, with their logs
const cleanups = [];

function killAll() {
  for (const c of children) {
    try { process.kill(c.pid, 'SIGKILL'); } catch { /* already gone */ }
  }
  children.clear();
}
process.on('exit', () => {
  killAll();
  if (missing && !IN_CI) process.stderr.write(`\n*** SKIPPED: ${script} not run: ${missing} ***\n`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { killAll(); process.exit(130); });

/** Fails the script, killing what it started, once `ms` have passed. */
export function watchdog(ms) {
  setTimeout(() => {
    process.stderr.write(`\nFAILED: ${script} exceeded ${ms / 1000} s overall; killing everything\n`);
    for (const s of servers) {
      process.stderr.write(`--- server ${s.child.pid} stderr (tail) ---\n${s.log.slice(-20).join('\n')}\n`);
    }
    killAll();
    process.exit(1);
  }, ms).unref();
}

/** Runs `fn` at the end, after the tests (closing a browser, a server). */
export function atEnd(fn) { cleanups.push(fn); }
after(async () => { for (const fn of cleanups.reverse()) await fn(); });

// ---- Chromium and pages -----------------------------------------------------

export async function launch() {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 15_000 });
  atEnd(() => browser.close().catch(() => {}));
  return browser;
}

/** A page in a fresh context that records every request and error. */
export async function newPage(browser, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...options });
  const page = await context.newPage();
  page.requests = [];
  page.errors = [];
  page.on('request', (r) => page.requests.push(r));
  page.on('pageerror', (e) => page.errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') page.errors.push(`console: ${m.text()}`); });
  return page;
}

/** The page's own record (src/page.html's window.__tickstream), less its functions. */
export const pageState = (page) => page.evaluate(() => {
  const d = window.__tickstream;
  return { state: d.state, lastId: d.lastId, events: d.events, ignored: d.ignored, connects: d.connects, jumps: d.jumps };
});

// ---- the tickstream binary -------------------------------------------------

const LISTENING = /^tickstream \S+ listening on http:\/\/(\S+):(\d+)\/$/;

/**
 * Starts $TICKSTREAM_BIN with `args`; resolves with {child, url, host, port,
 * log} once it listens. It is killed at the end, or by stopServer.
 */
export async function startServer(args) {
  const bin = process.env.TICKSTREAM_BIN;
  assert.ok(bin, 'set TICKSTREAM_BIN to the tickstream binary');
  const child = spawn(path.resolve(ROOT, bin), args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(child);
  const s = { child, log: [] };
  servers.add(s);
  s.exited = once(child, 'exit').then(() => { children.delete(child); servers.delete(s); });
  atEnd(() => stopServer(s));
  child.stderr.setEncoding('utf8');
  let buf = '';
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "listening on" line within 5 s: ${bin} ${args.join(' ')}`)), 5000);
    child.on('exit', (code, sig) => reject(new Error(`${bin} exited (${code ?? sig}) before listening:\n${s.log.join('\n')}`)));
    // Keep draining stderr for the whole run, so the server never blocks on a full pipe.
    child.stderr.on('data', (chunk) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (s.log.length === 0) {
          clearTimeout(timer);
          const m = LISTENING.exec(line);
          if (m) {
            [s.host, s.port, s.url] = [m[1], Number(m[2]), `http://${m[1]}:${m[2]}/`];
            resolve();
          } else reject(new Error(`unexpected first line: ${line}`));
        }
        s.log.push(line);
        if (s.log.length > 500) s.log.splice(0, 100);
      }
    });
  });
  return s;
}

/** Kills a server from startServer (SIGKILL) and waits until it has exited. */
export async function stopServer(s) {
  try { process.kill(s.child.pid, 'SIGKILL'); } catch { /* already gone */ }
  await s.exited;
}

// ---- ids ------------------------------------------------------------------

/**
 * An event id as a BigInt that orders ids of one form: a decimal counter as
 * itself, a Redis stream id MS-SEQ as MS * 2^64 + SEQ.
 */
export function idOrder(id) {
  const m = /^(\d+)(?:-(\d+))?$/.exec(String(id));
  assert.ok(m, `not an event id: ${id}`);
  return m[2] === undefined ? BigInt(m[1]) : BigInt(m[1]) * (1n << 64n) + BigInt(m[2]);
}
