// `poll` (src/api.js) in Node, with a stand-in fetch: a panel whose
// callback throws gets a failure to show, and polling goes on.

import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { poll } from '../src/api.js';

afterEach(() => {
  delete globalThis.fetch;
});

/** Lets the fetch and the callbacks it leads to run. */
async function settle() {
  for (let i = 0; i < 5; i += 1) await new Promise((resolve) => setImmediate(resolve));
}

test('a throwing callback shows a failure, is not an unhandled rejection, and polling goes on', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  t.mock.method(console, 'warn', () => {});
  let calls = 0;
  globalThis.fetch = async () => {
    calls += 1;
    return new Response(JSON.stringify({ n: calls }), { status: 200 });
  };
  const rejections = [];
  const onRejection = (reason) => rejections.push(reason);
  process.on('unhandledRejection', onRejection);
  t.after(() => process.off('unhandledRejection', onRejection));

  const seen = [];
  poll('/stats/anything', 2000, (result) => {
    seen.push(result);
    if (result.ok && result.data.n === 1) throw new TypeError('cannot read x of undefined');
  });
  await settle();
  assert.equal(seen.length, 2, 'the answer, then a failure to show');
  assert.equal(seen[1].ok, false);
  assert.match(seen[1].message, /cannot read x of undefined/);

  t.mock.timers.tick(2000);
  await settle();
  assert.equal(calls, 2, 'asked again after the interval');
  assert.deepEqual(seen.at(-1), { ok: true, data: { n: 2 } });
  await settle();
  assert.deepEqual(rejections, []);
});

test('a callback that cannot even show a failure does not stop polling', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  t.mock.method(console, 'warn', () => {});
  let calls = 0;
  globalThis.fetch = async () => {
    calls += 1;
    return new Response('{}', { status: 200 });
  };
  let stop = false;
  poll('/stats/anything', 1000, () => {
    if (stop) return;
    throw new Error('always');
  });
  await settle();
  t.mock.timers.tick(1000);
  await settle();
  assert.equal(calls, 2);
  stop = true;
});
