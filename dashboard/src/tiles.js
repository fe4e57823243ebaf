// The row of big numbers at the top. Each tile keeps its raw number in
// `data-value` (empty when unknown) next to the formatted text.

import { byRole, byTestId } from './dom.js';
import { formatCount, formatRate } from './format.js';

/**
 * @param {string} id the tile's data-testid
 * @param {number|null} value null when it cannot be known right now
 * @param {{rate?: boolean, note?: string, level?: string}} [options]
 */
export function setTile(id, value, { rate = false, note, level } = {}) {
  const tile = byTestId(id);
  const known = Number.isFinite(value);
  byRole('value', tile).textContent = rate ? formatRate(value) : formatCount(value);
  tile.dataset.value = known ? String(value) : '';
  if (note !== undefined) setTileNote(id, note);
  if (level) tile.dataset.level = level;
  else delete tile.dataset.level;
}

/** Changes only a tile's small note (e.g. why its number is stale). */
export function setTileNote(id, note) {
  const line = byRole('note', byTestId(id));
  line.textContent = note;
  line.title = note;
}
