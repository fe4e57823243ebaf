// The pipeline's health verdict (ok / degraded / down, and why) from a
// `/pipeline/status` answer. Pure functions, no DOM, tested in Node
// (tests/health.test.mjs); health.js shows the result.

import { formatAgo, formatCount } from './format.js';

/** No commit for this long while messages wait: the consumer is stuck. */
const STUCK_AFTER_SECONDS = 60;
/**
 * A commit this recent means a consumer is at work, even if none has
 * reported (the consumers' heartbeat rows are missing or late).
 */
const RECENT_COMMIT_SECONDS = 30;

/** Sum of the known lags, or null when no partition's lag is known. */
export function totalLag(partitions) {
  const known = (partitions ?? []).map((p) => p.lag).filter(Number.isFinite);
  return known.length > 0 ? known.reduce((sum, lag) => sum + lag, 0) : null;
}

/**
 * ok / degraded / down, and why, from a `getJson('/pipeline/status')` result.
 * @returns {{level: 'ok'|'degraded'|'down', reasons: string[]}}
 */
export function assessHealth(result) {
  if (!result.ok) return { level: 'down', reasons: [result.message] };
  const status = result.data;
  const down = [];
  const degraded = [];
  const sinceCommit = status.seconds_since_last_commit;
  if (Array.isArray(status.consumers) && status.consumers.length === 0) {
    if (Number.isFinite(sinceCommit) && sinceCommit < RECENT_COMMIT_SECONDS) {
      degraded.push(`consumers not reporting (heartbeat); last commit ${formatAgo(sinceCommit)}`);
    } else {
      down.push('no consumer has reported in the last 30 s');
    }
  }
  if (status.kafka !== 'ok') degraded.push('Kafka unreachable');
  const redisDown = status.redis_degraded === true
    || (status.consumers ?? []).some((consumer) => consumer.redis_degraded);
  if (redisDown) degraded.push('Redis down: deduplicating with Postgres only');
  const lag = totalLag(status.partitions);
  if (lag > 0 && Number.isFinite(sinceCommit) && sinceCommit > STUCK_AFTER_SECONDS) {
    degraded.push(`${formatCount(lag)} messages waiting, no commit for ${formatAgo(sinceCommit).replace(' ago', '')}`);
  }
  if (down.length > 0) return { level: 'down', reasons: [...down, ...degraded] };
  if (degraded.length > 0) return { level: 'degraded', reasons: degraded };
  return { level: 'ok', reasons: [] };
}
