// Talking to eventpulse-api (same origin). Every call resolves, never
// throws: a panel gets either its data or a short message to show, so a
// stopped API is a line of text in the page, not an uncaught error.

const TIMEOUT_MS = 8000;

/**
 * GET a JSON document.
 * @returns {Promise<{ok: true, data: any} | {ok: false, message: string}>}
 */
export async function getJson(path) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), TIMEOUT_MS);
  try {
    const response = await fetch(path, {
      headers: { Accept: 'application/json' },
      signal: abort.signal,
      cache: 'no-store',
    });
    if (!response.ok) {
      return { ok: false, message: `API error ${response.status}${await errorText(response)}, retrying` };
    }
    return { ok: true, data: await response.json() };
  } catch {
    return { ok: false, message: 'API unreachable, retrying' };
  } finally {
    clearTimeout(timer);
  }
}

/** The `error` field of an API error body, if it has one: " (postgres is unavailable)". */
async function errorText(response) {
  try {
    const body = await response.json();
    return typeof body?.error === 'string' ? ` (${body.error})` : '';
  } catch {
    return '';
  }
}

/**
 * Calls `path` now and then every `intervalMs` after each answer (never two
 * requests in flight for one panel), handing each result to `onResult`.
 * Should `onResult` throw (a bug showing an unexpected answer), it is called
 * again with a failure, so the panel shows its problem line, and polling
 * goes on: no unhandled rejection, the panel recovers with the next answer.
 */
export function poll(path, intervalMs, onResult) {
  const tick = async () => {
    deliver(onResult, await getJson(path)); // neither of them throws
    setTimeout(tick, intervalMs);
  };
  tick();
}

function deliver(onResult, result) {
  try {
    onResult(result);
  } catch (error) {
    console.warn(`showing ${result.ok ? 'an answer' : 'a failure'} failed:`, error);
    try {
      onResult({ ok: false, message: `Could not show the answer (${error?.message ?? error}), retrying` });
    } catch {
      // The panel cannot even show a failure; the next answer may do better.
    }
  }
}
