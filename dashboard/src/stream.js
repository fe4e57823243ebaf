// The live feed's connection to `GET /events/live` (Server-Sent Events).
//
// It remembers the stream's position, so that whenever it opens a stream
// again (resume after pause, after a `dropped` notice, after the API refused
// or went away) it asks for `last_event_id=<that position>`: the API replays
// what was committed in between, so nothing is missed and nothing repeats.
// The position is the id of the last event, or of the last `position` event
// (rows the API handled but did not send: filtered out, or left out by the
// sampled mode; these carry no data and add nothing to the feed), or the
// `last_event_id` a `dropped` notice carries. While a stream is merely
// interrupted, the browser's own EventSource retry sends the same id as the
// `Last-Event-ID` header.

const DROPPED_RETRY_MS = 1000;
const CLOSED_RETRY_MS = 3000;

const DROPPED_REASONS = {
  slow_client: 'fell behind the feed',
  server_stopping: 'the API is restarting',
  postgres_unavailable: 'the database is unavailable',
};

export class LiveStream {
  /**
   * @param {object} handlers
   * @param {(event: object) => void} handlers.onEvent a committed event
   * @param {(count: number) => void} handlers.onSkipped events left out (sampled mode)
   * @param {(state: string, message?: string) => void} handlers.onState
   *   'connecting' | 'live' | 'reconnecting' | 'stopped'
   */
  constructor({ onEvent, onSkipped, onState }) {
    this.handlers = { onEvent, onSkipped, onState };
    this.source = null;
    this.retryTimer = null;
    this.filter = { type: '', maxPerSecond: null };
    this.lastEventId = null;
  }

  /** Opens a stream from the current head (a new filter: no history). */
  startFresh(filter) {
    this.reset(filter);
    this.open(null);
  }

  /** Closes the stream and forgets its position: the next `resume` starts over. */
  reset(filter) {
    this.stop();
    this.filter = { ...filter };
    this.lastEventId = null;
  }

  /** Opens a stream that continues after the last event seen (or `fallback`). */
  resume(fallback = null) {
    this.stop();
    this.open(this.lastEventId ?? fallback);
  }

  /** Closes the stream and cancels any pending retry. */
  stop() {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.source) {
      this.source.close();
      this.source = null;
    }
    this.handlers.onState('stopped');
  }

  url(from) {
    const query = new URLSearchParams();
    if (this.filter.type) query.set('type', this.filter.type);
    if (this.filter.maxPerSecond) query.set('max_per_second', String(this.filter.maxPerSecond));
    if (from) query.set('last_event_id', from);
    const text = query.toString();
    return text ? `/events/live?${text}` : '/events/live';
  }

  open(from) {
    const source = new EventSource(this.url(from));
    this.source = source;
    this.handlers.onState('connecting');
    source.onopen = () => this.handlers.onState('live');
    source.onmessage = (message) => this.received(message);
    source.addEventListener('skipped', (message) => {
      const count = parseData(message)?.count;
      if (Number.isFinite(count)) this.handlers.onSkipped(count);
    });
    source.addEventListener('position', (message) => this.moveTo(message.lastEventId));
    source.addEventListener('dropped', (message) => this.dropped(parseData(message)));
    source.onerror = () => this.failed(source);
  }

  received(message) {
    const event = parseData(message);
    this.moveTo(message.lastEventId);
    if (event && typeof event.event_id === 'string') this.handlers.onEvent(event);
  }

  /** The resume point moves on (an empty or missing id leaves it). */
  moveTo(id) {
    if (typeof id === 'string' && id !== '') this.lastEventId = id;
  }

  /** The API ended the stream on purpose; carry on from where it said. */
  dropped(notice) {
    this.moveTo(notice?.last_event_id);
    const why = DROPPED_REASONS[notice?.reason] ?? 'the API ended the stream';
    this.retryAfter(DROPPED_RETRY_MS, `Stream closed (${why}), resuming`);
  }

  failed(source) {
    if (source !== this.source) return;
    if (source.readyState === EventSource.CLOSED) {
      // Refused (e.g. 503: too many streams) or not an event stream at all:
      // the browser gives up, so we try again ourselves.
      this.retryAfter(CLOSED_RETRY_MS, 'Live feed unavailable, retrying in 3 s');
    } else {
      this.handlers.onState('reconnecting', 'Connection lost, reconnecting');
    }
  }

  retryAfter(delayMs, message) {
    this.source?.close();
    this.source = null;
    clearTimeout(this.retryTimer);
    this.handlers.onState('reconnecting', message);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.open(this.lastEventId);
    }, delayMs);
  }
}

function parseData(message) {
  try {
    return JSON.parse(message.data);
  } catch {
    return null;
  }
}
