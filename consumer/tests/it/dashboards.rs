//! Dashboards and alert rules name only metrics the consumer exports.
//!
//! Every PromQL expression under `monitoring/` (Grafana dashboard targets and
//! variables, Prometheus rule `expr`s) is scanned for `eventpulse_*` and
//! `process_*` names, and each name is looked up in a live consumer's
//! `/metrics`. A renamed metric then fails here instead of leaving a blank
//! panel or an alert that can never fire.
//!
//! Names are compared with the *series* the consumer exposes, so a histogram
//! must be queried through `_bucket`, `_sum` or `_count`: its bare family name
//! selects nothing in PromQL and is reported too.
//!
//! Panels and variables on the Postgres data source are not PromQL and are
//! skipped here; `sql` runs their queries against the schema instead, with
//! Grafana's macros expanded by `macros`.

mod macros;
mod sql;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::{http_get, valid_events, Harness, PATIENCE};

/// The dashboards and rules together name at least this many metrics, so the
/// check cannot pass by finding none (a moved folder, a broken scanner).
const MIN_REFERENCED_METRICS: usize = 15;

/// `monitoring/` of this checkout, or `EVENTPULSE_MONITORING_DIR` (to check a
/// changed copy without touching the tree).
fn monitoring_dir() -> PathBuf {
    std::env::var_os("EVENTPULSE_MONITORING_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../monitoring"))
}

/// Files in `dir` whose name ends with `suffix`, sorted.
fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.to_string_lossy().ends_with(suffix))
        .collect();
    files.sort();
    files
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Identifiers that look like our metrics: `eventpulse_*` or `process_*`,
/// starting at an identifier boundary (so `foo_process_x` is not one).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let bytes = expr.as_bytes();
    let is_name_byte = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_';
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < bytes.len() {
        let at_boundary =
            i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || b"_:".contains(&bytes[i - 1]));
        let rest = &bytes[i..];
        if at_boundary && (rest.starts_with(b"eventpulse_") || rest.starts_with(b"process_")) {
            let len = rest.iter().take_while(|b| is_name_byte(**b)).count();
            names.insert(expr[i..i + len].to_owned());
            i += len;
        } else {
            i += 1;
        }
    }
    names
}

/// Every `expr:` of a Prometheus rule file: inline, quoted, or a block scalar
/// (`|`, `>`) whose lines are indented deeper than the key.
fn rule_expressions(yaml: &str) -> Vec<String> {
    let lines: Vec<&str> = yaml.lines().collect();
    let indent = |line: &str| line.len() - line.trim_start().len();
    let mut exprs = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let trimmed = lines[i].trim_start();
        let key = trimmed.strip_prefix("- ").unwrap_or(trimmed);
        let Some(value) = key.strip_prefix("expr:") else {
            i += 1;
            continue;
        };
        let key_indent = lines[i].len() - key.len();
        let value = value.trim();
        let mut expr = if value.starts_with(['|', '>']) {
            String::new()
        } else {
            value.to_owned()
        };
        i += 1;
        while i < lines.len() && (lines[i].trim().is_empty() || indent(lines[i]) > key_indent) {
            expr.push('\n');
            expr.push_str(lines[i].trim());
            i += 1;
        }
        exprs.push(expr);
    }
    exprs
}

/// Number of rules (`alert:` or `record:` keys) in a rule file.
fn rule_count(yaml: &str) -> usize {
    yaml.lines()
        .map(|l| l.trim_start().trim_start_matches("- "))
        .filter(|l| l.starts_with("alert:") || l.starts_with("record:"))
        .count()
}

/// The uid of the Postgres data source (grafana/provisioning/datasources/postgres.yml).
const POSTGRES_DATASOURCE_UID: &str = "eventpulse-postgres";

/// Whether a panel's, target's or variable's `datasource` is Postgres (by
/// plugin type, or our data source's uid).
fn is_postgres(datasource: &serde_json::Value) -> bool {
    let postgres_type = |t: &str| ["grafana-postgresql-datasource", "postgres"].contains(&t);
    match datasource {
        serde_json::Value::String(uid) => uid == POSTGRES_DATASOURCE_UID,
        serde_json::Value::Object(map) => {
            map.get("type")
                .and_then(|t| t.as_str())
                .is_some_and(postgres_type)
                || map.get("uid").and_then(|u| u.as_str()) == Some(POSTGRES_DATASOURCE_UID)
        }
        _ => false,
    }
}

/// Every string under a key Grafana evaluates as a query, outside objects
/// (panels, targets, variables) on the Postgres data source.
fn dashboard_queries(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) if map.get("datasource").is_some_and(is_postgres) => {}
        serde_json::Value::Object(map) => {
            for (key, inner) in map {
                match inner {
                    serde_json::Value::String(s)
                        if ["expr", "query", "definition"].contains(&key.as_str()) =>
                    {
                        out.push(s.clone())
                    }
                    _ => dashboard_queries(inner, out),
                }
            }
        }
        serde_json::Value::Array(items) => {
            items.iter().for_each(|item| dashboard_queries(item, out))
        }
        _ => {}
    }
}

/// Metric name -> the files that use it, over every dashboard and rule file.
fn referenced_metrics() -> BTreeMap<String, BTreeSet<String>> {
    let dir = monitoring_dir();
    let mut sources: Vec<(String, Vec<String>)> = Vec::new();
    let dashboards = files_ending(&dir.join("grafana/dashboards"), ".json");
    assert!(
        !dashboards.is_empty(),
        "no dashboard JSON under {}",
        dir.display()
    );
    for path in dashboards {
        let json: serde_json::Value = serde_json::from_str(&read(&path))
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        let mut queries = Vec::new();
        dashboard_queries(&json, &mut queries);
        sources.push((path.display().to_string(), queries));
    }
    for path in files_ending(&dir.join("prometheus"), ".yml") {
        let text = read(&path);
        let exprs = rule_expressions(&text);
        assert_eq!(
            exprs.len(),
            rule_count(&text),
            "{}: found {} `expr:` for {} rules; the scanner here must learn the new YAML form",
            path.display(),
            exprs.len(),
            rule_count(&text)
        );
        sources.push((path.display().to_string(), exprs));
    }
    let mut referenced: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, exprs) in sources {
        for name in exprs.iter().flat_map(|e| metric_names(e)) {
            referenced.entry(name).or_default().insert(file.clone());
        }
    }
    referenced
}

/// Series names in a Prometheus text exposition (histograms as their
/// `_bucket`, `_sum` and `_count` series).
fn exported_series(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| line.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn scanner_reads_names_from_promql() {
    let expr = r#"sum by (le) (rate(eventpulse_batch_size_bucket{instance=~"$x"}[5m])) / ignore_process_x + process_open_fds"#;
    let names: Vec<String> = metric_names(expr).into_iter().collect();
    assert_eq!(names, ["eventpulse_batch_size_bucket", "process_open_fds"]);
}

#[test]
fn scanner_skips_postgres_queries_only() {
    let dashboard = serde_json::json!({
        "templating": {"list": [
            {"datasource": {"type": "prometheus", "uid": "prometheus"}, "query": "eventpulse_a"},
            {"datasource": {"type": "grafana-postgresql-datasource"}, "query": "SELECT eventpulse_b"}
        ]},
        "panels": [
            {"targets": [{"expr": "eventpulse_c"}]},
            {"datasource": {"uid": "eventpulse-postgres"}, "targets": [{"query": "eventpulse_d"}]},
            {"datasource": {"type": "-- Mixed --"}, "targets": [
                {"datasource": "eventpulse-postgres", "query": "eventpulse_e"},
                {"datasource": {"type": "prometheus"}, "expr": "eventpulse_f"}
            ]}
        ]
    });
    let mut queries = Vec::new();
    dashboard_queries(&dashboard, &mut queries);
    queries.sort();
    assert_eq!(queries, ["eventpulse_a", "eventpulse_c", "eventpulse_f"]);
}

#[test]
fn scanner_reads_inline_and_block_rule_expressions() {
    let yaml = "groups:\n  - rules:\n      - alert: A\n        expr: up == 0\n        for: 1m\n      - alert: B\n        expr: |\n          sum(x)\n\n          > 1\n        labels: {}\n      - expr: y > 2\n        alert: C\n";
    assert_eq!(
        rule_expressions(yaml),
        ["up == 0", "\nsum(x)\n\n> 1", "y > 2"]
    );
    assert_eq!(rule_count(yaml), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboards_and_alerts_use_only_exported_metrics() {
    let referenced = referenced_metrics();
    assert!(
        referenced.len() >= MIN_REFERENCED_METRICS,
        "dashboards and rules name only {} metrics ({:?}); expected at least {MIN_REFERENCED_METRICS}",
        referenced.len(),
        referenced.keys().collect::<Vec<_>>()
    );

    // Stored events make the lag gauge appear: librdkafka reports a
    // partition's lag once the group has committed an offset on it.
    let harness = Harness::new(2).await;
    let consumer = harness.start(harness.layer()).await;
    let (records, ids) = valid_events(20, 4);
    harness.produce(&records).await;
    let stored = harness
        .wait_for_count("SELECT count(*) FROM events", ids.len() as i64)
        .await;
    assert_eq!(
        stored,
        ids.len() as i64,
        "the consumer stored the test events"
    );

    let deadline = tokio::time::Instant::now() + PATIENCE;
    let missing = loop {
        let exported = exported_series(&http_get(consumer.metrics_addr, "/metrics").await.1);
        let missing: Vec<(&String, &BTreeSet<String>)> = referenced
            .iter()
            .filter(|(name, _)| !exported.contains(*name))
            .collect();
        if missing.is_empty() || tokio::time::Instant::now() > deadline {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    consumer.stop().await;
    harness.finish().await;

    let report: Vec<String> = missing
        .iter()
        .map(|(name, files)| format!("{name} (used in {files:?})"))
        .collect();
    assert!(
        report.is_empty(),
        "metrics named in monitoring/ that the consumer does not export (a histogram is queried \
         through _bucket/_sum/_count):\n  {}",
        report.join("\n  ")
    );
    eprintln!(
        "dashboards: {} metric names checked against /metrics: {:?}",
        referenced.len(),
        referenced.keys().collect::<Vec<_>>()
    );
}
