// The live feed's delay as a person's browser sees it, for the benchmark
// (eventpulse-bench's live stage): opens the dashboard in Debian's Chromium,
// and beside the page's own stream a second one sampled the same way (at most
// 20 events a second, what a person can follow), recording for each event the
// time from its batch transaction's start (`ingested_at`) to its arrival in
// the page. Prints one JSON line:
// {"events": n, "p50_ms": x, "p99_ms": y}.
//
// Usage: node bench/feed-delay.mjs DASHBOARD_URL SECONDS

import { chromium } from 'playwright-core';

const [url, seconds] = process.argv.slice(2);
if (!url || !(Number(seconds) > 0)) {
  console.error('usage: node bench/feed-delay.mjs DASHBOARD_URL SECONDS');
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: process.env.EVENTPULSE_CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  await page.goto(url);
  await page.evaluate(() => {
    window.__delays = [];
    const source = new EventSource('/events/live?max_per_second=20');
    source.onmessage = (message) => {
      const arrived = Date.now();
      const ingested = Date.parse(JSON.parse(message.data).ingested_at);
      window.__delays.push(arrived - ingested);
    };
  });
  await page.waitForTimeout(Number(seconds) * 1000);
  const delays = await page.evaluate(() => window.__delays.slice().sort((a, b) => a - b));
  const at = (q) => (delays.length ? delays[Math.round((delays.length - 1) * q)] : null);
  console.log(JSON.stringify({ events: delays.length, p50_ms: at(0.5), p99_ms: at(0.99) }));
} finally {
  await browser.close();
}
