// Small DOM helpers shared by the panels. The page's markup is static
// (index.html); modules find their elements by `data-testid` or
// `data-role` and only ever set text, never HTML built from API data.

/** The element with `data-testid="id"` (inside `root`). */
export function byTestId(id, root = document) {
  return root.querySelector(`[data-testid="${id}"]`);
}

/** The element with `data-role="role"` (inside `root`). */
export function byRole(role, root = document) {
  return root.querySelector(`[data-role="${role}"]`);
}

/** A new element with a class and text. */
export function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * Shows (or clears, with `null`) a panel's problem line, e.g. "API
 * unreachable, retrying". The last good data stays on screen meanwhile.
 */
export function setPanelProblem(panel, message) {
  const line = byRole('problem', panel);
  if (!line) return;
  line.textContent = message ?? '';
  line.hidden = !message;
}

/** Shows or hides a panel's empty-state message. */
export function setEmpty(panel, isEmpty) {
  const note = byRole('empty', panel);
  if (note) note.hidden = !isEmpty;
}
