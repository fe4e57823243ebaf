//! The progress bar: drawn on stderr only when stderr is a terminal, so logs
//! and CI output stay clean; redrawn at most every 100 ms because
//! the driver calls it once per record.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::sink::Deliveries;

const REDRAW_EVERY: Duration = Duration::from_millis(100);

pub struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
    last_redraw: Instant,
}

impl Progress {
    /// A bar with a length when `count` is known, a spinner otherwise.
    pub fn new(enabled: bool, count: Option<u64>) -> Self {
        let bar = enabled.then(|| {
            let template = match count {
                Some(_) => "{elapsed_precise} [{bar:30.cyan/blue}] sent {pos}/{len} {msg}",
                None => "{spinner} {elapsed_precise} sent {pos} {msg}",
            };
            let style = ProgressStyle::with_template(template).expect("the template is valid");
            let bar = ProgressBar::with_draw_target(count, ProgressDrawTarget::stderr())
                .with_style(style.progress_chars("=> "));
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Self {
            bar,
            started: Instant::now(),
            last_redraw: Instant::now(),
        }
    }

    /// A bar that never draws, for tests and non-terminals.
    pub fn hidden() -> Self {
        Self::new(false, None)
    }

    pub fn update(&mut self, sent: u64, deliveries: Deliveries) {
        let Some(bar) = &self.bar else { return };
        if self.last_redraw.elapsed() < REDRAW_EVERY {
            return;
        }
        self.last_redraw = Instant::now();
        bar.set_position(sent);
        bar.set_message(self.counts(sent, deliveries));
    }

    /// Shown while waiting for the last deliveries.
    pub fn draining(&mut self, sent: u64, deliveries: Deliveries) {
        let Some(bar) = &self.bar else { return };
        bar.set_position(sent);
        let waiting = sent.saturating_sub(deliveries.settled());
        let counts = self.counts(sent, deliveries);
        bar.set_message(format!("{counts} (waiting for {waiting})"));
    }

    /// The average rate since the start (with steady pacing, the one that
    /// matters) and the delivery counts.
    fn counts(&self, sent: u64, deliveries: Deliveries) -> String {
        let rate = sent as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        // Only the API refuses records: Kafka runs need not show a zero.
        let refused = match deliveries.refused {
            0 => String::new(),
            n => format!(" refused {n}"),
        };
        format!(
            "{rate:.0}/s acked {}{refused} errors {}",
            deliveries.acked, deliveries.failed
        )
    }

    /// Removes the bar so the summary prints on a clean line.
    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
