// Pipeline health from `/pipeline/status` every 2 s: the header's pill and
// "last commit" line, the lag tile, and the panel with the consumers and
// the per-partition table. The verdict itself is verdict.js's job.

import { poll } from './api.js';
import { byRole, byTestId, element, setPanelProblem } from './dom.js';
import { formatAgo, formatCount, timeTitle } from './format.js';
import { setTile } from './tiles.js';
import { assessHealth, totalLag } from './verdict.js';

const STATUS_MS = 2000;

export class HealthPanel {
  constructor(panel) {
    this.panel = panel;
    this.head = null;
    this.lastCommit = null; // { seconds, at: performance.now() of the answer }
  }

  /** The live feed's head from the last answer (a resume point). */
  currentHead() {
    return this.head;
  }

  start() {
    poll('/pipeline/status', STATUS_MS, (result) => this.show(result));
    setInterval(() => this.renderCommitAge(), 1000);
  }

  show(result) {
    this.renderPill(assessHealth(result));
    setPanelProblem(this.panel, result.ok ? null : result.message);
    if (!result.ok) return;
    const status = result.data;
    this.head = status.live?.head ?? this.head;
    this.lastCommit = Number.isFinite(status.seconds_since_last_commit)
      ? { seconds: status.seconds_since_last_commit, at: performance.now(), utc: status.last_commit_at }
      : null;
    this.renderCommitAge();
    this.renderFacts(status);
    this.renderConsumers(status.consumers);
    this.renderPartitions(status.partitions ?? []);
  }

  renderPill({ level, reasons }) {
    const pill = byTestId('health');
    pill.dataset.level = level;
    byRole('level', pill).textContent = level;
    pill.title = reasons.length > 0 ? reasons.join('\n') : 'Consumers reporting, Kafka reachable, no stuck lag';
    byRole('health-reason').textContent = reasons[0] ?? '';
  }

  renderCommitAge() {
    const header = byRole('last-commit');
    const facts = byRole('commit-ago', this.panel);
    if (!this.lastCommit) {
      header.textContent = 'no commit yet';
      facts.textContent = 'never';
      return;
    }
    const seconds = this.lastCommit.seconds + (performance.now() - this.lastCommit.at) / 1000;
    const ago = formatAgo(seconds);
    header.textContent = `last commit ${ago}`;
    facts.textContent = ago;
    const title = this.lastCommit.utc ? timeTitle(new Date(this.lastCommit.utc)) : '';
    header.title = title;
    facts.title = title;
  }

  renderFacts(status) {
    const kafka = byRole('kafka', this.panel);
    kafka.textContent = status.kafka === 'ok' ? 'ok' : 'unreachable';
    kafka.dataset.level = status.kafka === 'ok' ? 'ok' : 'down';
    byRole('live-clients', this.panel).textContent = formatCount(status.live?.clients);
    const lag = totalLag(status.partitions);
    byRole('total-lag', this.panel).textContent = formatCount(lag);
    byRole('table-total-lag', this.panel).textContent = formatCount(lag);
    setTile('tile-lag', lag, {
      note: status.kafka === 'ok' ? 'messages not yet stored' : 'Kafka unreachable',
      level: lag > 0 ? 'warn' : undefined,
    });
  }

  renderConsumers(consumers) {
    const list = byTestId('consumers', this.panel);
    const known = Array.isArray(consumers);
    byRole('consumer-count', this.panel).textContent = known ? formatCount(consumers.length) : '?';
    byRole('consumers-empty', this.panel).hidden = !known || consumers.length > 0;
    list.replaceChildren(...(known ? consumers : []).map(consumerItem));
  }

  renderPartitions(partitions) {
    const table = byTestId('partitions', this.panel);
    table.tBodies[0].replaceChildren(...partitions.map(partitionRow));
    table.hidden = partitions.length === 0;
    byRole('partitions-empty', this.panel).hidden = partitions.length > 0;
  }
}

function consumerItem(consumer) {
  const item = element('li', 'consumer');
  const name = element('span', 'consumer-name', `${consumer.host} · pid ${consumer.pid}`);
  name.title = `member ${consumer.member_id}\ngroup ${consumer.group_id}`;
  const parts = `${formatCount(consumer.partitions)} partition${consumer.partitions === 1 ? '' : 's'}`;
  const redis = element('span', 'badge', consumer.redis_degraded ? 'Redis degraded' : 'Redis ok');
  redis.dataset.level = consumer.redis_degraded ? 'warn' : 'ok';
  const seen = element('span', 'consumer-seen', `seen ${formatAgo(consumer.seconds_since_seen)}`);
  if (consumer.seen_at) seen.title = timeTitle(new Date(consumer.seen_at));
  item.append(name, element('span', 'consumer-parts', parts), redis, seen);
  return item;
}

function partitionRow(partition) {
  const row = element('tr');
  const updated = element('td', 'muted', formatAgo((Date.now() - Date.parse(partition.updated_at)) / 1000));
  updated.title = timeTitle(new Date(partition.updated_at));
  const lag = element('td', 'num', formatCount(partition.lag));
  if (partition.lag > 0) lag.dataset.level = 'warn';
  row.append(
    element('td', '', `${partition.topic} / ${partition.partition}`),
    element('td', 'muted', partition.group_id),
    element('td', 'num', formatCount(partition.next_offset)),
    element('td', 'num', formatCount(partition.high_watermark)),
    lag,
    updated,
  );
  return row;
}
