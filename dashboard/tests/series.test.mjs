// API answers to chart series (src/series.js) and the health verdict
// (src/health.js), in Node.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assessHealth, totalLag } from '../src/health.js';
import { deadLetterSeries, hourlySeries, throughputSeries, topUsersSeries } from '../src/series.js';

test('throughput: absent types are zero; the rate leaves out the running second', () => {
  const buckets = Array.from({ length: 12 }, (_, i) => ({
    at: new Date(Date.UTC(2026, 11, 2, 7, 0, i)).toISOString(),
    counts: i === 11 ? { login: 1000 } : { login: 3, page_view: 7 },
  }));
  const series = throughputSeries({ bucket_seconds: 1, buckets });
  assert.deepEqual(series.byType.logout, Array(12).fill(0));
  assert.equal(series.byType.page_view[0], 7);
  assert.equal(series.total, 11 * 10 + 1000);
  assert.equal(series.ratePerSecond, 10);
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

const healthy = {
  partitions: [{ lag: 0 }, { lag: 4 }, { lag: null }],
  seconds_since_last_commit: 2,
  kafka: 'ok',
  consumers: [{ redis_degraded: false }],
  live: { clients: 1, head: '1-1' },
};

test('health: ok, degraded, down', () => {
  assert.equal(totalLag(healthy.partitions), 4);
  assert.equal(totalLag([{ lag: null }]), null);
  assert.equal(assessHealth({ ok: true, data: healthy }).level, 'ok');
  assert.equal(assessHealth({ ok: true, data: { ...healthy, kafka: 'unreachable' } }).level, 'degraded');
  assert.equal(assessHealth({ ok: true, data: { ...healthy, consumers: [{ redis_degraded: true }] } }).level, 'degraded');
  assert.equal(assessHealth({ ok: true, data: { ...healthy, seconds_since_last_commit: 300 } }).level, 'degraded');
  assert.equal(assessHealth({ ok: true, data: { ...healthy, consumers: [] } }).level, 'down');
  assert.equal(assessHealth({ ok: false, message: 'API unreachable, retrying' }).level, 'down');
});
