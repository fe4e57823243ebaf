// The live feed panel: newest committed events on top, at most MAX_ROWS
// rows, with Pause/Resume, a type filter and sampled/every-event modes.
// The connection itself (resume ids, retries) is LiveStream's job.
//
// The API sends each event once per stream, also across a resume; an
// event_id already shown is still dropped here as a safety net, but counted
// in the list's `data-repeats` so a repeat is visible (the browser test
// requires 0).

import { byRole, byTestId, element } from './dom.js';
import { formatClock, formatCount, summarizePayload, timeTitle, typeLabel } from './format.js';
import { LiveStream } from './stream.js';

const MAX_ROWS = 200;
/** Ids remembered to catch repeats: far more than can be on screen. */
const MAX_REMEMBERED_IDS = 5000;
const SAMPLED_PER_SECOND = 20;

const STATE_TEXT = {
  connecting: 'connecting…',
  live: 'live',
  reconnecting: 'reconnecting…',
  stopped: 'paused',
};

export class FeedPanel {
  /** @param {() => string|null} currentHead the feed head last seen in /pipeline/status */
  constructor(panel, currentHead) {
    this.panel = panel;
    this.currentHead = currentHead;
    this.list = byTestId('feed', panel);
    this.pauseButton = byTestId('feed-pause', panel);
    this.typeSelect = byTestId('feed-type', panel);
    this.modeToggle = byTestId('feed-mode', panel);
    this.receivedText = byTestId('feed-received', panel);
    this.skippedText = byTestId('feed-skipped', panel);
    this.stateText = byRole('feed-state', panel);
    this.paused = false;
    this.mode = 'sampled';
    this.received = 0;
    this.skipped = 0;
    this.repeats = 0;
    this.seen = new Set();
    this.pending = [];
    this.flushScheduled = false;
    this.stream = new LiveStream({
      onEvent: (event) => this.add(event),
      onSkipped: (count) => this.addSkipped(count),
      onState: (state, message) => this.showState(state, message),
    });
  }

  start() {
    this.pauseButton.addEventListener('click', () => this.togglePause());
    this.typeSelect.addEventListener('change', () => this.restart());
    for (const option of this.modeToggle.querySelectorAll('[data-mode-option]')) {
      option.addEventListener('click', () => this.setMode(option.dataset.modeOption));
    }
    this.renderMode();
    this.renderCounters();
    this.renderRepeats();
    this.restart();
  }

  filter() {
    return {
      type: this.typeSelect.value,
      maxPerSecond: this.mode === 'sampled' ? SAMPLED_PER_SECOND : null,
    };
  }

  /**
   * A new filter or mode: clear the list and start from the current head.
   * Repeats are counted within one such run, so `seen` starts over too.
   */
  restart() {
    this.pending = [];
    this.seen.clear();
    this.list.replaceChildren();
    this.renderEmpty();
    if (this.paused) this.stream.reset(this.filter());
    else this.stream.startFresh(this.filter());
  }

  setMode(mode) {
    if (mode === this.mode) return;
    this.mode = mode;
    this.renderMode();
    this.restart();
  }

  togglePause() {
    this.paused = !this.paused;
    this.pauseButton.textContent = this.paused ? 'Resume' : 'Pause';
    this.pauseButton.setAttribute('aria-pressed', String(this.paused));
    if (this.paused) this.stream.stop();
    else this.stream.resume(this.currentHead());
  }

  add(event) {
    if (this.seen.has(event.event_id)) {
      this.repeats += 1;
      this.renderRepeats();
      return;
    }
    this.remember(event.event_id);
    this.received += 1;
    this.pending.push(event);
    if (this.pending.length > MAX_ROWS) this.pending.splice(0, this.pending.length - MAX_ROWS);
    this.scheduleFlush();
  }

  addSkipped(count) {
    this.skipped += count;
    this.scheduleFlush();
  }

  remember(id) {
    this.seen.add(id);
    if (this.seen.size > MAX_REMEMBERED_IDS) {
      this.seen.delete(this.seen.values().next().value);
    }
  }

  /** Rows are added once per frame, however fast events arrive. */
  scheduleFlush() {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    requestAnimationFrame(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  flush() {
    const rows = this.pending.map(feedRow).reverse();
    this.pending = [];
    if (rows.length > 0) this.list.prepend(...rows);
    while (this.list.childElementCount > MAX_ROWS) this.list.lastElementChild.remove();
    this.renderEmpty();
    this.renderCounters();
  }

  renderCounters() {
    this.receivedText.textContent = `${formatCount(this.received)} received`;
    this.skippedText.textContent = `${formatCount(this.skipped)} skipped`;
    this.skippedText.dataset.value = String(this.skipped);
    this.receivedText.dataset.value = String(this.received);
    this.skippedText.hidden = this.mode !== 'sampled';
  }

  /** Events the stream sent twice (should stay 0), on the list itself. */
  renderRepeats() {
    this.list.dataset.repeats = String(this.repeats);
  }

  renderMode() {
    this.modeToggle.dataset.mode = this.mode;
    for (const option of this.modeToggle.querySelectorAll('[data-mode-option]')) {
      option.setAttribute('aria-pressed', String(option.dataset.modeOption === this.mode));
    }
    this.renderCounters();
  }

  renderEmpty() {
    const note = byRole('empty', this.panel);
    note.hidden = this.list.childElementCount > 0;
    const type = this.typeSelect.value;
    byRole('empty-type', note).textContent = type ? `${typeLabel(type)} ` : '';
  }

  showState(state, message) {
    const paused = state === 'stopped' && this.paused;
    const key = state === 'stopped' && !paused ? 'connecting' : state;
    this.stateText.dataset.state = key;
    this.stateText.textContent = message ?? STATE_TEXT[key];
  }
}

/** One `<li>` of the feed; API data only ever goes in as text. */
function feedRow(event) {
  const row = element('li', 'feed-row');
  row.dataset.testid = 'feed-row';
  row.dataset.eventId = event.event_id;
  row.dataset.eventType = event.event_type;

  const at = new Date(event.occurred_at);
  const time = element('time', 'feed-time', Number.isNaN(at.getTime()) ? '?' : formatClock(at));
  if (!Number.isNaN(at.getTime())) {
    time.dateTime = at.toISOString();
    time.title = timeTitle(at);
  }
  const chip = element('span', `chip chip-${event.event_type}`, typeLabel(event.event_type));
  const user = element('span', 'feed-user', event.user_id);
  user.title = event.user_id;
  const text = summarizePayload(event.event_type, event.payload);
  const summary = element('span', 'feed-summary', text);
  summary.title = text;
  row.append(time, chip, user, summary);
  return row;
}
