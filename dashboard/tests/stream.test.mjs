// The live feed's connection (src/stream.js) against a stand-in EventSource,
// in Node: which id each reopened stream resumes from, and that `position`
// and `dropped` notices move that id without adding anything to the feed.

import assert from 'node:assert/strict';
import { afterEach, beforeEach, test } from 'node:test';
import { LiveStream } from '../src/stream.js';

/** Records the streams opened; `emit` plays what the API would send. */
class FakeEventSource {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSED = 2;
  static opened = [];

  constructor(url) {
    this.url = url;
    this.readyState = FakeEventSource.CONNECTING;
    this.listeners = {};
    FakeEventSource.opened.push(this);
  }

  addEventListener(type, listener) {
    (this.listeners[type] ??= []).push(listener);
  }

  close() {
    this.readyState = FakeEventSource.CLOSED;
  }

  /** An SSE event: `type` 'message' goes to `onmessage`. */
  emit(type, { id = '', data = '' } = {}) {
    const message = { type, lastEventId: id, data };
    if (type === 'message') this.onmessage?.(message);
    for (const listener of this.listeners[type] ?? []) listener(message);
  }
}

let events;
let skipped;
let stream;

beforeEach(() => {
  globalThis.EventSource = FakeEventSource;
  FakeEventSource.opened = [];
  events = [];
  skipped = [];
  stream = new LiveStream({
    onEvent: (event) => events.push(event.event_id),
    onSkipped: (count) => skipped.push(count),
    onState: () => {},
  });
});

afterEach(() => {
  stream.stop();
  delete globalThis.EventSource;
});

const latest = () => FakeEventSource.opened.at(-1);
const resumedFrom = () => new URL(latest().url, 'http://page/').searchParams.get('last_event_id');

test('resume continues after the last event', () => {
  stream.startFresh({ type: '', maxPerSecond: null });
  assert.equal(resumedFrom(), null, 'a fresh stream starts at the head');
  latest().emit('message', { id: 'c1', data: JSON.stringify({ event_id: 'e1' }) });
  stream.stop();
  stream.resume('head-from-status');
  assert.equal(resumedFrom(), 'c1');
  assert.deepEqual(events, ['e1']);
});

test('a position event moves the resume point and adds nothing', () => {
  stream.startFresh({ type: 'login', maxPerSecond: 20 });
  latest().emit('message', { id: 'c1', data: JSON.stringify({ event_id: 'e1' }) });
  latest().emit('position', { id: 'c7', data: '{}' });
  stream.stop();
  stream.resume('head-from-status');
  assert.equal(resumedFrom(), 'c7');
  assert.deepEqual(events, ['e1'], 'no row for a position');
  assert.deepEqual(skipped, [], 'no count for a position');
  assert.match(latest().url, /type=login/);
  assert.match(latest().url, /max_per_second=20/);
});

test('a position with no events before it is a resume point too', () => {
  stream.startFresh({ type: '', maxPerSecond: null });
  latest().emit('position', { id: 'c3', data: '{}' });
  stream.stop();
  stream.resume('head-from-status');
  assert.equal(resumedFrom(), 'c3', 'not the (older) head from /pipeline/status');
});

test('a dropped notice resumes from its last_event_id', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  stream.startFresh({ type: '', maxPerSecond: null });
  latest().emit('message', { id: 'c1', data: JSON.stringify({ event_id: 'e1' }) });
  latest().emit('dropped', { data: JSON.stringify({ reason: 'slow_client', last_event_id: 'c9' }) });
  assert.equal(latest().readyState, FakeEventSource.CLOSED, 'the ended stream is closed');
  t.mock.timers.tick(1000);
  assert.equal(FakeEventSource.opened.length, 2, 'reopened after a second');
  assert.equal(resumedFrom(), 'c9');
});

test('a dropped notice without last_event_id resumes after the last event', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  stream.startFresh({ type: '', maxPerSecond: null });
  latest().emit('message', { id: 'c1', data: JSON.stringify({ event_id: 'e1' }) });
  latest().emit('dropped', { data: JSON.stringify({ reason: 'server_stopping' }) });
  t.mock.timers.tick(1000);
  assert.equal(resumedFrom(), 'c1');
});

test('reset forgets the position: resume starts from the fallback', () => {
  stream.startFresh({ type: '', maxPerSecond: null });
  latest().emit('message', { id: 'c1', data: JSON.stringify({ event_id: 'e1' }) });
  stream.reset({ type: 'logout', maxPerSecond: null });
  stream.resume('head-from-status');
  assert.equal(resumedFrom(), 'head-from-status');
  assert.match(latest().url, /type=logout/);
});

test('skipped notices are counted, not shown', () => {
  stream.startFresh({ type: '', maxPerSecond: 20 });
  latest().emit('skipped', { id: 'c1', data: JSON.stringify({ count: 12 }) });
  assert.deepEqual(skipped, [12]);
  assert.deepEqual(events, []);
});
