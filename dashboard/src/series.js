// API answers turned into what the charts and tiles plot. Pure functions,
// no DOM, tested in Node (tests/series.test.mjs). Every series also
// carries `total`, the sum of the values plotted (the canvas' data-total).

import { EVENT_TYPES } from './format.js';

/** Seconds averaged for the "events/s now" tile. */
export const RATE_WINDOW_SECONDS = 10;
/**
 * Newest seconds left out of that average: the one still running, and the
 * one before it, as a row reaches the API's counter up to ~1 s after its
 * second (it counts by `ingested_at`, the start of its batch transaction).
 */
export const RATE_UNSETTLED_SECONDS = 2;

/**
 * `/stats/throughput`: one point per second per type (absent types are 0),
 * plus the rate over the RATE_WINDOW_SECONDS seconds before the newest
 * RATE_UNSETTLED_SECONDS.
 */
export function throughputSeries(body) {
  const buckets = Array.isArray(body?.buckets) ? body.buckets : [];
  const series = byTypeSeries(buckets, (bucket) => bucket.counts);
  const complete = buckets.slice(0, -RATE_UNSETTLED_SECONDS).slice(-RATE_WINDOW_SECONDS);
  const recent = complete.reduce((sum, bucket) => sum + sumValues(bucket.counts), 0);
  return {
    labels: buckets.map((bucket) => new Date(bucket.at)),
    ...series,
    ratePerSecond: complete.length > 0 ? recent / complete.length : 0,
  };
}

/** `/stats/hourly`: one stacked bar per hour, one stack part per type. */
export function hourlySeries(body) {
  const buckets = Array.isArray(body?.buckets) ? body.buckets : [];
  return {
    labels: buckets.map((bucket) => new Date(bucket.hour)),
    ...byTypeSeries(buckets, (bucket) => bucket.by_type),
  };
}

/** `/stats/top-users`: users, largest first. */
export function topUsersSeries(body) {
  const users = Array.isArray(body?.users) ? body.users : [];
  return labelled(users.map((user) => [user.user_id, user.count]));
}

/** `/stats/dead-letters`: reasons, largest first, and the API's total. */
export function deadLetterSeries(body) {
  const reasons = Array.isArray(body?.reasons) ? body.reasons : [];
  const series = labelled(reasons.map((reason) => [reason.reason, reason.count]));
  return { ...series, total: Number.isFinite(body?.total) ? body.total : series.total };
}

function byTypeSeries(buckets, countsOf) {
  const byType = Object.fromEntries(
    EVENT_TYPES.map((type) => [type, buckets.map((bucket) => numberOr0(countsOf(bucket)?.[type]))]),
  );
  const total = Object.values(byType).reduce((sum, values) => sum + sumList(values), 0);
  return { byType, total };
}

function labelled(pairs) {
  const values = pairs.map(([, count]) => numberOr0(count));
  return { labels: pairs.map(([label]) => String(label)), values, total: sumList(values) };
}

function sumValues(counts) {
  return counts && typeof counts === 'object' ? sumList(Object.values(counts).map(numberOr0)) : 0;
}

function sumList(values) {
  return values.reduce((sum, value) => sum + value, 0);
}

function numberOr0(value) {
  return Number.isFinite(value) ? value : 0;
}
