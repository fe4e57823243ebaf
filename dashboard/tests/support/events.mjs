// Realistic events in the wire format `POST /events/batch` takes (see
// events/src/wire.rs), with user ids unique to one test run so the test's
// own events are easy to tell from anything else in the feed.

import { randomUUID } from 'node:crypto';

export const TYPES = ['login', 'logout', 'page_view', 'button_click', 'form_submit'];

const DEVICES = ['Chrome', 'Firefox', 'Safari', 'Edge', 'iOS', 'Android'];
const PAGES = ['/', '/pricing', '/docs/getting-started', '/blog/kafka-at-scale', '/checkout', '/account'];
const BUTTONS = ['buy-now', 'start-trial', 'add-to-cart', 'next-step', 'dismiss-banner'];

const pick = (list, i) => list[i % list.length];

function payload(type, userId, i) {
  switch (type) {
    case 'login':
      return { userId, ip: `203.0.113.${(i % 250) + 1}`, device: pick(DEVICES, i) };
    case 'logout':
      return { userId, duration: 60 + ((i * 97) % 5400), ip: `198.51.100.${(i % 250) + 1}` };
    case 'page_view':
      return i % 3 === 0
        ? { userId, page: pick(PAGES, i), referrer: 'https://www.example.org/search', device: pick(DEVICES, i + 1) }
        : { userId, page: pick(PAGES, i) };
    case 'button_click':
      return { userId, buttonId: pick(BUTTONS, i), page: pick(PAGES, i + 2) };
    case 'form_submit':
      return { userId, formId: i % 2 ? 'signup' : 'checkout', fields: { plan: 'team', seats: String(1 + (i % 20)) } };
    default:
      throw new Error(`unknown type ${type}`);
  }
}

/** One wire-format event. */
export function wireEvent(type, userId, { i = 0, at = new Date() } = {}) {
  return { eventId: randomUUID(), type, timestamp: at.toISOString(), payload: payload(type, userId, i) };
}

/**
 * `count` events of mixed types for users `<prefix>-0..users-1`; user k
 * gets about twice as many events as user k+1, so a top-users chart has a
 * clear order.
 */
export function mixedBatch(count, prefix, { users = 5, types = TYPES, at = () => new Date() } = {}) {
  return Array.from({ length: count }, (_, i) => {
    const user = Math.min(users - 1, Math.floor(Math.log2(1 + (i % (2 ** users - 1)))));
    return wireEvent(types[i % types.length], `${prefix}-${users - 1 - user}`, { i, at: at(i) });
  });
}
