// The dashboard in a real browser against a real eventpulse-api and
// consumer (the Rust test that starts them sets the environment; see
// tests/support/dashboard.mjs). It produces events through the API and
// checks what a person would see. Timeouts are generous pass/fail bounds;
// the delays measured are printed, never asserted on.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  apiGet, describeDelays, eventually, numberAttribute, openDashboard, produce, rowCount,
  rowsSince, settings, waitForRows, waitUntilStored,
} from './support/dashboard.mjs';
import { TYPES, mixedBatch, wireEvent } from './support/events.mjs';

const env = settings();
const run = `dash-${Date.now().toString(36)}`;
let browser;
let page;
let problems;

const feedState = () => page.getAttribute('[data-role="feed-state"]', 'data-state');
const waitLive = () => page.waitForSelector('[data-role="feed-state"][data-state="live"]', { timeout: 20000 });
const domIds = () => page.$$eval('[data-testid="feed-row"]', (rows) => rows.map((row) => row.dataset.eventId));
// The feed drops an event_id it already showed (a safety net) but counts
// it: a stream that repeated an event shows up here, not as a second row.
const repeats = () => numberAttribute(page, 'feed', 'data-repeats');

async function useMode(mode) {
  await page.click(`[data-testid="feed-mode"] [data-mode-option="${mode}"]`);
  assert.equal(await page.getAttribute('[data-testid="feed-mode"]', 'data-mode'), mode);
  await waitLive();
}

async function useType(type) {
  await page.selectOption('[data-testid="feed-type"]', type);
  await waitLive();
}

describe('dashboard', { timeout: 300000 }, () => {
  before(async () => {
    ({ browser, page, problems } = await openDashboard(env));
  });

  after(async () => {
    await browser?.close();
  });

  test('loads, connects the feed and fills the header and tiles', { timeout: 30000 }, async () => {
    assert.equal(await page.title(), 'eventpulse · live');
    await waitLive();
    await page.waitForSelector('[data-testid="health"]:not([data-level="unknown"])', { timeout: 20000 });
    await eventually('events stored tile', () => numberAttribute(page, 'tile-stored', 'data-value'), Number.isFinite);
    await eventually('lag tile', () => page.getAttribute('[data-testid="tile-lag"]', 'data-value'), (v) => v !== null);
    for (const id of ['chart-rate', 'chart-hourly', 'chart-top-users', 'chart-dead']) {
      assert.ok(await page.isVisible(`[data-testid="${id}"]`), `${id} is visible`);
    }
    assert.equal(await repeats(), 0, 'the feed counts repeats (data-repeats)');
    assert.deepEqual(problems, [], 'no console or page error while loading');
  });

  test('every produced event reaches the feed, tiles and charts (every-event mode)', { timeout: 90000 }, async () => {
    await useMode('every');
    // Read from the API itself: the page's own numbers may be a refresh old.
    const storedBefore = (await apiGet(env, '/events/metrics')).total_events;
    const hourlyBefore = (await apiGet(env, '/stats/hourly')).total;
    const rateBefore = (await apiGet(env, '/stats/throughput')).buckets
      .reduce((sum, bucket) => sum + Object.values(bucket.counts).reduce((a, b) => a + b, 0), 0);
    const mark = await rowCount(page);

    const events = mixedBatch(50, `${run}-a`);
    const acknowledgedAt = await produce(env, events);
    const seenAt = await waitForRows(page, events.map((event) => event.eventId), { mark });
    console.log(`feed delay after the 202: ${describeDelays(seenAt.map((at) => Math.max(0, at - acknowledgedAt)))}`);

    const rows = await rowsSince(page, mark);
    for (const event of events) {
      assert.equal(rows.find((row) => row.id === event.eventId).type, event.type, 'row shows the event type');
    }
    await eventually('events stored tile', () => numberAttribute(page, 'tile-stored', 'data-value'),
      (stored) => stored >= storedBefore + events.length);
    await eventually('chart-rate data-total', () => numberAttribute(page, 'chart-rate', 'data-total'),
      (total) => total > rateBefore);
    await eventually('chart-hourly data-total', () => numberAttribute(page, 'chart-hourly', 'data-total'),
      (total) => total >= hourlyBefore + events.length);
    const received = await numberAttribute(page, 'feed-received', 'data-value');
    assert.ok(received >= events.length, `received counter ${received} counts the batch`);
  });

  test('the type filter shows only that type', { timeout: 90000 }, async () => {
    const beforeFilter = await rowCount(page);
    await useType('login');
    const mark = await rowCount(page);
    const addedSinceFilter = new Set((await rowsSince(page, beforeFilter)).map((row) => row.id));
    const kept = (await domIds()).filter((id) => !addedSinceFilter.has(id));
    assert.deepEqual(kept, [], 'a new filter clears the rows shown before it');

    const events = mixedBatch(40, `${run}-b`);
    const logins = events.filter((event) => event.type === 'login');
    await produce(env, events);
    await waitForRows(page, logins.map((event) => event.eventId), { mark });
    // Every other event of the batch is committed; a login produced after
    // them is delivered after them (commit order), so once it is shown any
    // wrongly passed event would have been too.
    await waitUntilStored(env, events);
    const sentinel = wireEvent('login', `${run}-b-sentinel`);
    await produce(env, [sentinel]);
    await waitForRows(page, [sentinel.eventId], { mark });

    const otherTypes = (await rowsSince(page, mark)).filter((row) => row.type !== 'login');
    assert.deepEqual(otherTypes, [], 'no row of another type was added');
    const shown = await page.$$eval('[data-testid="feed-row"]', (rows) => rows.map((row) => row.dataset.eventType));
    assert.ok(shown.length >= logins.length + 1);
    assert.deepEqual([...new Set(shown)], ['login']);
    await useType('');
  });

  test('pause then resume shows each event committed meanwhile exactly once', { timeout: 90000 }, async () => {
    await page.click('[data-testid="feed-pause"]');
    assert.equal(await page.textContent('[data-testid="feed-pause"]'), 'Resume');
    assert.equal(await feedState(), 'stopped');
    const mark = await rowCount(page);

    const events = mixedBatch(30, `${run}-c`);
    const ids = events.map((event) => event.eventId);
    await produce(env, events);
    await waitUntilStored(env, events);
    const duringPause = (await rowsSince(page, mark)).filter((row) => ids.includes(row.id));
    assert.deepEqual(duringPause, [], 'nothing is added while paused');

    await page.click('[data-testid="feed-pause"]');
    assert.equal(await page.textContent('[data-testid="feed-pause"]'), 'Pause');
    await waitForRows(page, ids, { mark });
    // Let anything that would repeat arrive before counting.
    const tail = wireEvent('page_view', `${run}-c-tail`);
    await produce(env, [tail]);
    await waitForRows(page, [tail.eventId], { mark });

    const added = (await rowsSince(page, mark)).map((row) => row.id);
    for (const id of ids) {
      assert.equal(added.filter((seen) => seen === id).length, 1, `event ${id} added exactly once`);
    }
    const inDom = await domIds();
    assert.equal(new Set(inDom).size, inDom.length, 'no duplicate data-event-id in the feed');
    assert.equal(await repeats(), 0, 'the resumed stream sent no event twice');
  });

  test('after a few hundred events (sampled mode) the page is screenshotted', { timeout: 120000 }, async () => {
    await useMode('sampled');
    const storedBefore = (await apiGet(env, '/events/metrics')).total_events;
    const dayAgo = Date.now() - 23 * 3600 * 1000;
    let produced = 0;
    for (const batch of ['d', 'e', 'f']) {
      // Spread over the last day, so the hourly chart shows every hour.
      const events = mixedBatch(100, `${run}-${batch}`, {
        users: 7, at: (i) => new Date(dayAgo + ((i * 7919) % 100) * 0.23 * 3600 * 1000),
      });
      await produce(env, events);
      produced += events.length;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    // At most 20 a second are shown; a `skipped` notice precedes the next
    // event sent, so trickle events until one arrives.
    await eventually('feed-skipped', async () => {
      await produce(env, [wireEvent(TYPES[produced % TYPES.length], `${run}-g`, { i: produced })]);
      produced += 1;
      return numberAttribute(page, 'feed-skipped', 'data-value');
    }, (skipped) => skipped > 0, { timeout: 30000, every: 1100 });
    assert.ok(await page.isVisible('[data-testid="feed-skipped"]'));

    await eventually('events stored tile', () => numberAttribute(page, 'tile-stored', 'data-value'),
      (stored) => stored >= storedBefore + produced);
    // The 10 s panels (hourly, top users) refresh once more before the picture.
    await page.waitForTimeout(10500);
    await page.screenshot({ path: env.screenshot, fullPage: true });
    console.log(`screenshot written to ${env.screenshot}`);
  });

  test('no repeated event, no console error and no page error during the whole run', async () => {
    assert.equal(await repeats(), 0, 'no stream sent an event twice');
    assert.deepEqual(problems, []);
  });
});
