// The API reference at /docs in a real browser: Swagger UI, bundled from
// npm (no CDN), must fetch /openapi.json and render its operations. Needs
// the same running API as dashboard.test.mjs (EVENTPULSE_DASHBOARD_URL).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { apiGet, openDashboard, settings } from './support/dashboard.mjs';

const env = settings();
let browser;
let page;
let problems;

describe('API reference (/docs)', { timeout: 60000 }, () => {
  before(async () => {
    const url = new URL('/docs', env.url).href;
    ({ browser, page, problems } = await openDashboard({ ...env, url }));
  });

  after(async () => {
    await browser?.close();
  });

  test('Swagger UI renders the operations of /openapi.json', { timeout: 30000 }, async () => {
    const spec = await apiGet(env, '/openapi.json');
    await page.waitForSelector('.swagger-ui .info .title', { timeout: 20000 });
    assert.match(await page.textContent('.swagger-ui .info .title'), new RegExp(spec.info.title));
    // Matched on data-path: the shown path has zero-width spaces after each '/'.
    const get = page.locator('.opblock-get .opblock-summary-path[data-path="/events/{event_id}"]');
    await get.waitFor({ timeout: 20000 });
    assert.ok(await get.isVisible(), 'GET /events/{event_id} is listed');
    const operations = await page.locator('.opblock').count();
    const documented = Object.values(spec.paths).reduce((sum, item) => sum + Object.keys(item).length, 0);
    assert.equal(operations, documented, 'one block per documented operation');
    assert.deepEqual(problems, [], 'no console or page error');
  });

  test('loads nothing from outside the API (no CDN)', async () => {
    const origin = new URL(env.url).origin;
    // The page was loaded in before(), so ask it what it fetched.
    const requested = await page.evaluate(() => performance.getEntriesByType('resource').map((entry) => entry.name));
    assert.ok(requested.some((url) => url.endsWith('/openapi.json')), `fetched /openapi.json: ${requested}`);
    const elsewhere = requested.filter((url) => !url.startsWith(origin) && !url.startsWith('data:'));
    assert.deepEqual(elsewhere, []);
  });
});
