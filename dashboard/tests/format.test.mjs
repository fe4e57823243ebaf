// The pure helpers of src/format.js, in Node (no browser needed).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatAgo, formatCount, formatDuration, summarizePayload, timeTitle } from '../src/format.js';

test('counts keep every digit and group them', () => {
  const text = formatCount(1234567);
  assert.equal(text.replace(/\D/g, ''), '1234567');
  assert.ok(text.length > 7, `"${text}" has separators`);
  assert.equal(formatCount(null), '—');
});

test('ages read naturally', () => {
  assert.equal(formatAgo(0.4), 'just now');
  assert.equal(formatAgo(12.7), '12 s ago');
  assert.equal(formatAgo(600), '10 min ago');
  assert.equal(formatAgo(null), 'never');
});

test('hover titles carry the UTC time', () => {
  assert.match(timeTitle(new Date('2026-12-02T07:02:44Z')), /2026-12-02T07:02:44\.000Z \(UTC\)/);
});

test('payload summaries name what happened', () => {
  assert.equal(summarizePayload('login', { userId: 'u', ip: '10.0.0.7', device: 'Firefox' }), 'Firefox · 10.0.0.7');
  assert.equal(summarizePayload('logout', { userId: 'u', duration: 723, ip: '10.0.0.7' }), 'session 12m 03s · 10.0.0.7');
  assert.equal(summarizePayload('button_click', { userId: 'u', buttonId: 'buy', page: '/pricing' }), '#buy · on /pricing');
  assert.equal(summarizePayload('form_submit', { userId: 'u', formId: 'signup', fields: { a: '1', b: '2' } }), 'signup · 2 fields');
  assert.equal(summarizePayload('page_view', { userId: 'u', page: '/' }), '/');
  assert.equal(summarizePayload('page_view', { userId: 'u', other: 3 }), 'other=3', 'unknown fields still show');
  assert.equal(formatDuration(3725), '1h 02m');
});
