//! The dashboard in a real browser: Debian's Chromium, driven by Playwright
//! (`dashboard/tests/dashboard.test.mjs`, run with Node's test runner),
//! against the real consumer and the API serving the built page, on a topic
//! and database of this test's own. Events go in over `POST /events/batch`
//! and must show up in the page's feed, counters and charts.
//!
//! Needs the built page and the browser: `scripts/dashboard.sh build` (which
//! `scripts/test.sh` runs first) installs both. The screenshot is written to
//! `target/tmp/dashboard.png` (cargo's `CARGO_TARGET_TMPDIR`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::support::{start, Consumer, Stack, KEY};

/// The whole browser run: installing nothing, it takes well under a minute.
const BROWSER_PATIENCE: Duration = Duration::from_secs(240);

fn dashboard_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../dashboard")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_committed_events_in_a_real_browser() {
    let root = dashboard_root();
    let dist = root.join("dist");
    assert!(
        dist.join("index.html").is_file() && root.join("node_modules").is_dir(),
        "the dashboard is not built in {}: run scripts/dashboard.sh build",
        root.display()
    );
    let stack = Stack::new(6).await;
    let consumer = Consumer::start(&stack).await;
    let mut layer = stack.layer();
    layer.dashboard_dir = Some(dist);
    let api = start(eventpulse_api::Settings::from_layer(layer).expect("settings")).await;
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");

    let run = tokio::process::Command::new("node")
        .args(["--test", "--test-concurrency=1", "tests/"])
        .current_dir(&root)
        .env("EVENTPULSE_DASHBOARD_URL", format!("{}/", api.base))
        .env("EVENTPULSE_API_KEY", KEY)
        .env("EVENTPULSE_SCREENSHOT", &screenshot)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(BROWSER_PATIENCE, run)
        .await
        .expect("the browser test finishes")
        .expect("node runs (is Node.js 20 installed?)");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{report}");
    assert!(
        output.status.success(),
        "the browser test failed:\n{report}"
    );
    assert!(
        screenshot.is_file(),
        "no screenshot at {}",
        screenshot.display()
    );

    api.stop().await;
    consumer.stop().await;
    stack.finish().await;
}
