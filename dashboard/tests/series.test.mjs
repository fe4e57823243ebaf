// API answers to chart series (src/series.js), in Node.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deadLetterSeries, hourlySeries, throughputSeries, topUsersSeries } from '../src/series.js';

test('throughput: absent types are zero; the rate leaves out the newest two seconds', () => {
  // 15 seconds: 3 too old for the 10 s window (1 each), 10 of 10 each, then
  // the unsettled second before the running one and the running one.
  const counts = (i) => {
    if (i < 3) return { login: 1 };
    if (i === 13) return { form_submit: 500 };
    if (i === 14) return { login: 1000 };
    return { login: 3, page_view: 7 };
  };
  const buckets = Array.from({ length: 15 }, (_, i) => ({
    at: new Date(Date.UTC(2026, 11, 2, 7, 0, i)).toISOString(),
    counts: counts(i),
  }));
  const series = throughputSeries({ bucket_seconds: 1, buckets });
  assert.deepEqual(series.byType.logout, Array(15).fill(0));
  assert.equal(series.byType.page_view[3], 7);
  assert.equal(series.total, 3 + 10 * 10 + 500 + 1000, 'the chart plots every second');
  assert.equal(series.ratePerSecond, 10);
  // Fewer seconds than the window: the average of those there are.
  const short = throughputSeries({ buckets: buckets.slice(10) });
  assert.equal(short.ratePerSecond, 10, 'seconds 10..12 of 10 each; 13 and 14 left out');
  assert.equal(throughputSeries({ buckets: buckets.slice(13) }).ratePerSecond, 0);
  assert.equal(throughputSeries({ buckets: [] }).ratePerSecond, 0);
});

test('hourly: stacked by type, total of everything plotted', () => {
  const series = hourlySeries({ buckets: [
    { hour: '2026-12-02T06:00:00Z', count: 3, by_type: { login: 1, form_submit: 2 } },
    { hour: '2026-12-02T07:00:00Z', count: 0, by_type: {} },
  ] });
  assert.deepEqual(series.byType.form_submit, [2, 0]);
  assert.equal(series.total, 3);
});

test('rankings keep the API order and total', () => {
  assert.deepEqual(topUsersSeries({ users: [{ user_id: 'a', count: 5 }, { user_id: 'b', count: 2 }] }),
    { labels: ['a', 'b'], values: [5, 2], total: 7 });
  assert.equal(deadLetterSeries({ total: 9, reasons: [{ reason: 'invalid_json', count: 9 }] }).total, 9);
  assert.equal(deadLetterSeries(null).total, 0);
});
