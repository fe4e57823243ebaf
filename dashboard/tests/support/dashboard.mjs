// What the browser test needs around the page: the settings from the
// environment, a headless Chromium that records every console error and
// page error, a log of each feed row the page ever adds, and calls to the
// real API (produce a batch, wait until events are stored).

import { chromium } from 'playwright-core';

/** The settings the Rust test passes in; missing ones fail loudly. */
export function settings() {
  const missing = ['EVENTPULSE_DASHBOARD_URL', 'EVENTPULSE_API_KEY'].filter((name) => !process.env[name]);
  if (missing.length > 0) {
    throw new Error(
      `${missing.join(' and ')} not set: this test drives the dashboard of a running eventpulse-api ` +
      '(with a consumer storing events). Start both, then run e.g. ' +
      'EVENTPULSE_DASHBOARD_URL=http://127.0.0.1:8080/ EVENTPULSE_API_KEY=<key> npm --prefix dashboard test ' +
      '(without them, `npm --prefix dashboard run test:unit` runs the tests that need no API)',
    );
  }
  return {
    url: process.env.EVENTPULSE_DASHBOARD_URL,
    apiKey: process.env.EVENTPULSE_API_KEY,
    screenshot: process.env.EVENTPULSE_SCREENSHOT ?? 'dashboard.png',
    chromium: process.env.EVENTPULSE_CHROMIUM ?? '/usr/bin/chromium',
  };
}

// No network beyond the API on this machine: Chromium must not try to
// reach Google's services (QUIC, updates, sync) on its own.
const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/** Every feed row the page adds, in order, with the page's clock, even rows later pushed out. */
function recordFeedRows() {
  window.__feedRows = [];
  new MutationObserver((mutations) => {
    const now = Date.now();
    for (const mutation of mutations) {
      for (const node of mutation.addedNodes) {
        if (node.nodeType === 1 && node.dataset.testid === 'feed-row') {
          window.__feedRows.push({ id: node.dataset.eventId, type: node.dataset.eventType, at: now });
        }
      }
    }
  }).observe(document, { childList: true, subtree: true });
}

export async function openDashboard({ url, chromium: executablePath }) {
  const browser = await chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS });
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  const problems = [];
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  await page.addInitScript(recordFeedRows);
  await page.goto(url);
  return { browser, page, problems };
}

/** How many rows the page has added so far (a mark for `rowsSince`). */
export function rowCount(page) {
  return page.evaluate(() => window.__feedRows.length);
}

/** The rows added since `mark`. */
export function rowsSince(page, mark) {
  return page.evaluate((from) => window.__feedRows.slice(from), mark);
}

/**
 * Waits until every id has had a row since `mark`; returns when each first
 * appeared (page clock, ms). Fails naming the ids still missing.
 */
export async function waitForRows(page, ids, { mark = 0, timeout = 20000 } = {}) {
  try {
    await page.waitForFunction(
      ({ wanted, from }) => {
        const seen = new Set(window.__feedRows.slice(from).map((row) => row.id));
        return wanted.every((id) => seen.has(id));
      },
      { wanted: ids, from: mark },
      { timeout, polling: 100 },
    );
  } catch (error) {
    const seen = new Set((await rowsSince(page, mark)).map((row) => row.id));
    const missing = ids.filter((id) => !seen.has(id));
    throw new Error(`${missing.length} of ${ids.length} events never reached the feed within ${timeout} ms: ${missing.slice(0, 5).join(', ')}…`, { cause: error });
  }
  const firstSeen = new Map();
  for (const row of await rowsSince(page, mark)) if (!firstSeen.has(row.id)) firstSeen.set(row.id, row.at);
  return ids.map((id) => firstSeen.get(id));
}

/** The number a stat tile or canvas holds (`data-value` / `data-total`). */
export async function numberAttribute(page, testId, attribute) {
  const text = await page.getAttribute(`[data-testid="${testId}"]`, attribute);
  return text === null || text === '' ? null : Number(text);
}

/** Polls `read()` until `accept(value)`; fails with the last value. */
export async function eventually(what, read, accept, { timeout = 30000, every = 250 } = {}) {
  const deadline = Date.now() + timeout;
  let value;
  for (;;) {
    value = await read();
    if (accept(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(value)} after ${timeout} ms`);
    await new Promise((resolve) => setTimeout(resolve, every));
  }
}

/** POSTs a batch; returns the time of the 202 (ms). */
export async function produce({ url, apiKey }, events) {
  const response = await fetch(new URL('/events/batch', url), {
    method: 'POST',
    headers: { 'X-API-Key': apiKey, 'Content-Type': 'application/json' },
    body: JSON.stringify(events),
  });
  const acknowledgedAt = Date.now();
  if (response.status !== 202) {
    throw new Error(`POST /events/batch answered ${response.status}: ${await response.text()}`);
  }
  return acknowledgedAt;
}

/** A GET of the API, as JSON. */
export async function apiGet({ url }, path) {
  const response = await fetch(new URL(path, url));
  if (!response.ok) throw new Error(`GET ${path} answered ${response.status}: ${await response.text()}`);
  return response.json();
}

/** Waits until the API can look up every one of `events` (they are committed). */
export async function waitUntilStored({ url }, events, timeout = 30000) {
  const pending = new Set(events.map((event) => event.eventId));
  await eventually(`events not yet stored (of ${events.length})`, async () => {
    for (const id of [...pending]) {
      const response = await fetch(new URL(`/events/${id}`, url));
      await response.arrayBuffer();
      if (response.status === 200) pending.delete(id);
    }
    return pending.size;
  }, (left) => left === 0, { timeout });
}

/** "p50 120 ms, max 340 ms" of a list of delays. */
export function describeDelays(delays) {
  const sorted = [...delays].sort((a, b) => a - b);
  const p50 = sorted[Math.floor((sorted.length - 1) / 2)];
  return `p50 ${p50} ms, max ${sorted[sorted.length - 1]} ms over ${sorted.length} events`;
}
