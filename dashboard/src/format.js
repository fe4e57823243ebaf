// Formatting shared by every panel: numbers with the viewer's separators,
// times in the viewer's zone (UTC kept for a hover title), event-type
// colours, and the one-line payload summary of a feed row. Pure functions,
// no DOM, so tests/format.test.mjs runs them in Node.

export const EVENT_TYPES = ['login', 'logout', 'page_view', 'button_click', 'form_submit'];

// One colour per type, used by the feed chips and every chart, chosen to
// read on both the light and the dark background.
export const TYPE_COLORS = {
  login: '#22a06b',
  logout: '#8b8fa3',
  page_view: '#3b82f6',
  button_click: '#f59e0b',
  form_submit: '#a855f7',
};

const integer = new Intl.NumberFormat();
const oneDecimal = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
const clock = new Intl.DateTimeFormat(undefined, {
  hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
});
const hourOnly = new Intl.DateTimeFormat(undefined, {
  hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
});
const dateAndTime = new Intl.DateTimeFormat(undefined, {
  dateStyle: 'medium', timeStyle: 'medium',
});

/** `1234567` -> "1,234,567" (in the viewer's locale); `null` -> "—". */
export function formatCount(n) {
  return Number.isFinite(n) ? integer.format(n) : '—';
}

/** A rate with at most one decimal: `12.345` -> "12.3". */
export function formatRate(n) {
  return Number.isFinite(n) ? oneDecimal.format(n) : '—';
}

/** "14:02:09" in the viewer's zone. */
export function formatClock(date) {
  return clock.format(date);
}

/** "14:00" in the viewer's zone, for hourly buckets. */
export function formatHour(date) {
  return hourOnly.format(date);
}

/** The hover text of a time: the viewer's date and time, then UTC. */
export function timeTitle(date) {
  return `${dateAndTime.format(date)} (local)\n${date.toISOString()} (UTC)`;
}

/** "just now", "4 s ago", "3 min ago", "2 h ago" from a number of seconds. */
export function formatAgo(seconds) {
  if (!Number.isFinite(seconds)) return 'never';
  if (seconds < 1) return 'just now';
  if (seconds < 120) return `${Math.floor(seconds)} s ago`;
  if (seconds < 7200) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 172800) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}

/** "1h 02m", "12m 03s", "45s" for a session length in seconds. */
export function formatDuration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = Math.floor(seconds % 60);
  const pad = (v) => String(v).padStart(2, '0');
  if (h > 0) return `${h}h ${pad(m)}m`;
  if (m > 0) return `${m}m ${pad(s)}s`;
  return `${s}s`;
}

/** "page_view" -> "page view". */
export function typeLabel(type) {
  return String(type).replaceAll('_', ' ');
}

const SUMMARIES = {
  login: (p) => join([p.device, p.ip]),
  logout: (p) => join([Number.isFinite(p.duration) && `session ${formatDuration(p.duration)}`, p.ip]),
  page_view: (p) => join([p.page, p.referrer && `from ${p.referrer}`, p.device]),
  button_click: (p) => join([p.buttonId && `#${p.buttonId}`, p.page && `on ${p.page}`]),
  form_submit: (p) => join([p.formId, formFields(p.fields)]),
};

/** A short, human summary of an event's payload for one feed row. */
export function summarizePayload(type, payload) {
  const p = payload && typeof payload === 'object' ? payload : {};
  const known = SUMMARIES[type];
  const text = known ? known(p) : '';
  return text || genericSummary(p);
}

function formFields(fields) {
  if (!fields || typeof fields !== 'object') return '';
  const n = Object.keys(fields).length;
  return `${n} field${n === 1 ? '' : 's'}`;
}

function genericSummary(payload) {
  return join(
    Object.entries(payload)
      .filter(([key]) => key !== 'userId')
      .slice(0, 3)
      .map(([key, value]) => `${key}=${typeof value === 'object' ? JSON.stringify(value) : value}`),
  );
}

function join(parts) {
  return parts.filter((part) => typeof part === 'string' && part !== '').join(' · ');
}
