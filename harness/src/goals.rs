//! Step 11's goals, judged from the figures of the same run: each line says
//! the figure, the goal and whether it was met. A goal whose stage did not
//! run is left out.

use crate::report::Report;

struct Goal {
    name: &'static str,
    value: f64,
    unit: &'static str,
    goal: f64,
    /// `true`: the value must reach the goal; `false`: stay at or under it.
    at_least: bool,
}

fn goals(report: &Report) -> Vec<Goal> {
    let mut goals = Vec::new();
    let ceiling = report.postgres_ceiling().map(|(_, per_second)| per_second);
    let share = |rows_per_second: f64| 100.0 * rows_per_second / ceiling.unwrap_or(f64::NAN);
    if let (Some(e2e), Some(_)) = (&report.end_to_end, ceiling) {
        goals.push(Goal {
            name: "one consumer, share of the Postgres ceiling",
            value: share(e2e.rows_per_second()),
            unit: "%",
            goal: 85.0,
            at_least: true,
        });
    }
    if let (Some(two), Some(_)) = (report.scaling.get(1), ceiling) {
        goals.push(Goal {
            name: "two consumers, share of the Postgres ceiling",
            value: share(two.stored_rows as f64 / two.seconds),
            unit: "%",
            goal: 95.0,
            at_least: true,
        });
    }
    if let Some(e2e) = &report.end_to_end {
        goals.push(Goal {
            name: "consumer CPU per million messages",
            value: e2e.cpu_seconds_per_million,
            unit: " s",
            goal: 3.0,
            at_least: false,
        });
        goals.push(Goal {
            name: "consumer peak RSS at full speed",
            value: e2e.peak_rss_mib,
            unit: " MiB",
            goal: 48.0,
            at_least: false,
        });
    }
    if let Some(latency) = &report.latency {
        goals.push(Goal {
            name: "p99 produce-to-row",
            value: latency.p99_ms,
            unit: " ms",
            goal: 100.0,
            at_least: false,
        });
    }
    if let Some(peer) = &report.peer {
        goals.push(Goal {
            name: "rows/s against Quix Streams",
            value: peer.ratio,
            unit: "x",
            goal: peer.goal,
            at_least: true,
        });
    }
    goals
}

/// Prints the goals table, if any goal's stage ran.
pub fn print(report: &Report) {
    let goals = goals(report);
    if goals.is_empty() {
        return;
    }
    println!("\ngoals (Step 11)");
    for g in goals {
        let met = if g.at_least {
            g.value >= g.goal
        } else {
            g.value <= g.goal
        };
        let bound = if g.at_least { ">=" } else { "<=" };
        println!(
            "{:<50} {:>10.1}{:<4} goal {bound} {}{:<4} {}",
            g.name,
            g.value,
            g.unit,
            g.goal,
            g.unit,
            if met { "met" } else { "MISSED" }
        );
    }
}
