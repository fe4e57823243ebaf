// The pipeline's health verdict (src/verdict.js), in Node.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assessHealth, totalLag } from '../src/verdict.js';

const healthy = {
  partitions: [{ lag: 0 }, { lag: 4 }, { lag: null }],
  seconds_since_last_commit: 2,
  kafka: 'ok',
  consumers: [{ redis_degraded: false, partitions: 3 }],
  live: { clients: 1, head: '1-1' },
};
const assess = (changes) => assessHealth({ ok: true, data: { ...healthy, ...changes } });

test('lag: the sum of the known lags', () => {
  assert.equal(totalLag(healthy.partitions), 4);
  assert.equal(totalLag([{ lag: null }]), null);
  assert.equal(totalLag(undefined), null);
});

test('ok: consumers reporting, Kafka reachable, nothing stuck', () => {
  assert.deepEqual(assess({}), { level: 'ok', reasons: [] });
});

test('degraded: Kafka, Redis, or messages waiting with no commit', () => {
  assert.equal(assess({ kafka: 'unreachable' }).level, 'degraded');
  assert.equal(assess({ consumers: [{ redis_degraded: true }] }).level, 'degraded');
  assert.equal(assess({ seconds_since_last_commit: 300 }).level, 'degraded');
  assert.equal(assess({ seconds_since_last_commit: 300, partitions: [{ lag: 0 }] }).level, 'ok',
    'no commit for a while with nothing waiting is only quiet');
});

test('no consumer reporting: degraded while commits are recent, down otherwise', () => {
  const heartbeat = assess({ consumers: [] });
  assert.equal(heartbeat.level, 'degraded');
  assert.match(heartbeat.reasons[0], /consumers not reporting \(heartbeat\)/);
  assert.equal(assess({ consumers: [], seconds_since_last_commit: 29.5 }).level, 'degraded');
  assert.equal(assess({ consumers: [], seconds_since_last_commit: 30 }).level, 'down');
  const never = assess({ consumers: [], seconds_since_last_commit: null });
  assert.equal(never.level, 'down');
  assert.match(never.reasons[0], /no consumer has reported/);
});

test('down: the API did not answer', () => {
  assert.deepEqual(assessHealth({ ok: false, message: 'API unreachable, retrying' }),
    { level: 'down', reasons: ['API unreachable, retrying'] });
});
