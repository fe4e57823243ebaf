//! Every SQL query of a dashboard panel on the Postgres data source runs, as
//! Grafana would send it, against a fresh database with the consumer's
//! migrations and a few rows: events of every type the schema allows and a
//! dead letter. Each query must
//!
//! - expand: only macros and variables `macros` knows (an unknown one fails);
//! - run, and return at least one row (a time series one with a `time` column);
//! - read tables through an index, bounded by a condition on the index's
//!   leading column: planned with sequential scans off, every scan needs one,
//!   except directly under a `Limit` (an ordered read that stops early).
//!   Postgres also lists conditions on later columns as `Index Cond`, so a
//!   range on `occurred_at` alone would pass as an index scan of the whole of
//!   `events_type_time_idx`; it fails here for want of `event_type`.
//!
//! The walk must account for every `rawSql` in the file, each Postgres panel
//! must have queries, and the dashboards must hold at least
//! [`MIN_SQL_QUERIES`]: a moved file or a new panel shape cannot pass silently.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeDelta, Utc};
use eventpulse_consumer::schema;
use eventpulse_events::RejectReason;
use eventpulse_testkit::TestDatabase;
use serde_json::Value;
use sqlx::{Column, PgPool, Row};

use super::macros::{interpolate, variable_text, Interpolation};
use super::{files_ending, is_postgres, monitoring_dir, read};

/// `activity.json` has 7.
const MIN_SQL_QUERIES: usize = 7;

/// `$__interval`: Grafana derives it from the range and the panel's width.
const INTERVAL: &str = "1m";

/// The variable whose values must be exactly the event types the schema allows.
const EVENT_TYPE_VARIABLE: &str = "event_type";

struct SqlQuery {
    /// `file: panel title (refId)`, for messages.
    origin: String,
    sql: String,
    /// Grafana's result format: `time_series` or `table`.
    format: String,
}

/// A custom template variable: its values, and whether Grafana substitutes a
/// quoted list (multi-value or "All") or a bare value.
struct CustomVariable {
    values: Vec<String>,
    quoted_list: bool,
}

struct SqlDashboard {
    file: String,
    queries: Vec<SqlQuery>,
    variables: BTreeMap<String, CustomVariable>,
}

/// The `uid:` of every provisioned data source.
fn provisioned_uids() -> BTreeSet<String> {
    let dir = monitoring_dir().join("grafana/provisioning/datasources");
    files_ending(&dir, ".yml")
        .iter()
        .flat_map(|path| {
            read(path)
                .lines()
                .filter_map(|line| {
                    line.trim()
                        .strip_prefix("uid:")
                        .map(|v| v.trim().to_owned())
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Number of `key` members anywhere in `value`.
fn count_key(value: &Value, key: &str) -> usize {
    match value {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| usize::from(k == key) + count_key(v, key))
            .sum(),
        Value::Array(items) => items.iter().map(|v| count_key(v, key)).sum(),
        _ => 0,
    }
}

/// The Postgres queries of `panels` (and of panels nested in rows).
fn panel_queries(file: &str, panels: &[Value], uids: &BTreeSet<String>, out: &mut Vec<SqlQuery>) {
    for panel in panels {
        let title = panel["title"].as_str().unwrap_or("(untitled)");
        let panel_source = panel.get("datasource").filter(|v| !v.is_null());
        let targets = panel["targets"].as_array().map_or(&[][..], Vec::as_slice);
        assert!(
            !(panel_source.is_some_and(is_postgres) && targets.is_empty()),
            "{file}: panel {title:?} is on Postgres but has no queries"
        );
        for target in targets {
            let source = target
                .get("datasource")
                .filter(|v| !v.is_null())
                .or(panel_source);
            let Some(source) = source.filter(|s| is_postgres(s)) else {
                continue;
            };
            let origin = format!(
                "{file}: {title} ({})",
                target["refId"].as_str().unwrap_or("?")
            );
            let uid = source
                .get("uid")
                .and_then(Value::as_str)
                .or(source.as_str());
            assert!(
                uid.is_some_and(|uid| uids.contains(uid)),
                "{origin}: data source uid {uid:?} is not provisioned (uids: {uids:?})"
            );
            let sql = target["rawSql"].as_str().filter(|s| !s.trim().is_empty());
            let sql = sql.unwrap_or_else(|| {
                panic!("{origin}: a Postgres query without rawSql (builder mode?); save it as code")
            });
            out.push(SqlQuery {
                origin,
                sql: sql.to_owned(),
                format: target["format"].as_str().unwrap_or("table").to_owned(),
            });
        }
        if let Some(nested) = panel["panels"].as_array() {
            panel_queries(file, nested, uids, out);
        }
    }
}

/// Custom variables by name, refusing Postgres variables and annotations,
/// which this test does not run yet.
fn custom_variables(file: &str, dashboard: &Value) -> BTreeMap<String, CustomVariable> {
    let listed = |key: &str| {
        dashboard[key]["list"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    for item in listed("templating").iter().chain(&listed("annotations")) {
        assert!(
            !item.get("datasource").is_some_and(is_postgres),
            "{file}: {:?} queries Postgres outside a panel; teach dashboards/sql.rs to run it",
            item["name"]
        );
    }
    listed("templating")
        .iter()
        .filter(|v| v["type"] == "custom")
        .map(|v| {
            let query = v["query"].as_str().unwrap_or_default();
            assert!(
                !query.contains(" : "),
                "{file}: custom `key : value` options are not supported here"
            );
            let variable = CustomVariable {
                values: query.split(',').map(|s| s.trim().to_owned()).collect(),
                quoted_list: v["multi"] == true || v["includeAll"] == true,
            };
            (v["name"].as_str().unwrap_or_default().to_owned(), variable)
        })
        .collect()
}

/// Every dashboard with Postgres queries.
fn sql_dashboards() -> Vec<SqlDashboard> {
    let uids = provisioned_uids();
    let mut dashboards = Vec::new();
    for path in files_ending(&monitoring_dir().join("grafana/dashboards"), ".json") {
        let file = path.display().to_string();
        let json: Value = serde_json::from_str(&read(&path))
            .unwrap_or_else(|e| panic!("{file} is not JSON: {e}"));
        let mut queries = Vec::new();
        panel_queries(
            &file,
            json["panels"].as_array().map_or(&[][..], Vec::as_slice),
            &uids,
            &mut queries,
        );
        assert_eq!(
            queries.len(),
            count_key(&json, "rawSql"),
            "{file}: the panel walk found {} Postgres queries but the file has more `rawSql`",
            queries.len()
        );
        let variables = custom_variables(&file, &json);
        if !queries.is_empty() {
            dashboards.push(SqlDashboard {
                file,
                queries,
                variables,
            });
        }
    }
    dashboards
}

/// The values of the CHECK constraint on `events.event_type`.
async fn allowed_event_types(pool: &PgPool) -> Vec<String> {
    let check: String = sqlx::query_scalar(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint \
         WHERE conrelid = 'events'::regclass AND contype = 'c' \
           AND pg_get_constraintdef(oid) LIKE '%event_type%'",
    )
    .fetch_one(pool)
    .await
    .expect("the event_type CHECK constraint");
    // CHECK ((event_type = ANY (ARRAY['login'::text, ...]))): the quoted parts.
    check
        .split('\'')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// Two events of every type (two users, 30 and 150 minutes ago) and a dead
/// letter recorded 10 minutes ago.
async fn insert_rows(pool: &PgPool, event_types: &[String]) {
    sqlx::query(
        "WITH rows AS (SELECT gen_random_uuid() AS id, t, u, now() - ago AS at, \
                              jsonb_build_object('user_id', u)::text AS payload, row_number() OVER () AS n \
                       FROM unnest($1::text[]) t, \
                            (VALUES ('user-a', interval '30 minutes'), ('user-b', interval '150 minutes')) v(u, ago)) \
         SELECT count(*) FROM rows, LATERAL eventpulse_store_events(ARRAY[id], ARRAY[t], ARRAY[u], ARRAY[at], \
                                                                     ARRAY[payload], ARRAY[0], ARRAY[n])",
    )
    .bind(event_types)
    .execute(pool)
    .await
    .expect("insert events");
    sqlx::query(
        "INSERT INTO dead_letters (topic, kafka_partition, kafka_offset, reason, detail, recorded_at) \
         VALUES ('events', 0, 7, $1, 'a test dead letter', now() - interval '10 minutes')",
    )
    .bind(RejectReason::ALL[0].code())
    .execute(pool)
    .await
    .expect("insert a dead letter");
}

/// Index name -> its leading column, for every index in the database.
async fn leading_columns(pool: &PgPool) -> BTreeMap<String, String> {
    sqlx::query_as::<_, (String, String)>(
        "SELECT c.relname::text, a.attname::text FROM pg_index i \
         JOIN pg_class c ON c.oid = i.indexrelid \
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = current_schema()",
    )
    .fetch_all(pool)
    .await
    .expect("list indexes")
    .into_iter()
    .collect()
}

/// Scans in a JSON plan node (and below) that read a whole table or index:
/// a table scan, or an index scan without a condition on the index's leading
/// column, other than directly under a `Limit`.
fn unbounded_scans(
    node: &Value,
    parent: &str,
    leading: &BTreeMap<String, String>,
    out: &mut Vec<String>,
) {
    let node_type = node["Node Type"].as_str().unwrap_or_default();
    let unbounded = if let Some(index) = node["Index Name"].as_str() {
        let column = leading.get(index).map_or("?", String::as_str);
        let condition = node["Index Cond"].as_str().unwrap_or_default();
        let bounded = condition.contains(&format!("({column} "));
        (!bounded).then(|| format!("{node_type} using {index} without a condition on {column}"))
    } else if node_type == "Bitmap Heap Scan" {
        None // reads what its Bitmap Index Scans (checked below) found
    } else {
        node["Relation Name"]
            .as_str()
            .map(|table| format!("{node_type} on {table}"))
    };
    if let Some(scan) = unbounded.filter(|_| parent != "Limit") {
        out.push(scan);
    }
    for child in node["Plans"].as_array().into_iter().flatten() {
        unbounded_scans(child, node_type, leading, out);
    }
}

async fn whole_table_reads(
    pool: &PgPool,
    sql: &str,
    leading: &BTreeMap<String, String>,
) -> Result<Vec<String>, String> {
    let mut tx = pool.begin().await.map_err(|e| e.to_string())?;
    sqlx::query("SET LOCAL enable_seqscan = off")
        .execute(&mut *tx)
        .await
        .map_err(|e| e.to_string())?;
    let row = sqlx::query(&format!("EXPLAIN (FORMAT JSON) {sql}"))
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| format!("EXPLAIN: {e}"))?;
    // A `json` column: its text in either wire format; sqlx decodes it as a
    // String only unchecked without its `json` feature.
    let plan: String = row.try_get_unchecked(0).map_err(|e| e.to_string())?;
    let plan: Value = serde_json::from_str(&plan).map_err(|e| format!("EXPLAIN output: {e}"))?;
    let mut scans = Vec::new();
    unbounded_scans(&plan[0]["Plan"], "", leading, &mut scans);
    Ok(scans)
}

async fn check_query(
    pool: &PgPool,
    query: &SqlQuery,
    ctx: &Interpolation<'_>,
    leading: &BTreeMap<String, String>,
) -> Result<(), String> {
    let sql = interpolate(&query.sql, ctx)?;
    let rows = sqlx::query(&sql)
        .fetch_all(pool)
        .await
        .map_err(|e| format!("{e}\n{sql}"))?;
    let first = rows
        .first()
        .ok_or_else(|| format!("returned no rows\n{sql}"))?;
    if query.format == "time_series" && !first.columns().iter().any(|c| c.name() == "time") {
        return Err(format!("a time series without a `time` column\n{sql}"));
    }
    let scans = whole_table_reads(pool, &sql, leading).await?;
    if !scans.is_empty() {
        return Err(format!("reads a whole table or index: {scans:?}\n{sql}"));
    }
    Ok(())
}

/// Failures of one dashboard: its event type variable, then every query with
/// each variable as if "All" (or its first value) were selected.
async fn check_dashboard(
    pool: &PgPool,
    dashboard: &SqlDashboard,
    event_types: &[String],
    leading: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut failures = Vec::new();
    if let Some(CustomVariable { values, .. }) = dashboard.variables.get(EVENT_TYPE_VARIABLE) {
        if values != event_types {
            failures.push(format!(
                "{}: ${EVENT_TYPE_VARIABLE} offers {values:?}, the schema allows {event_types:?}",
                dashboard.file
            ));
        }
    }
    let substitutions = dashboard
        .variables
        .iter()
        .map(|(name, v)| (name.clone(), variable_text(&v.values, v.quoted_list)))
        .collect();
    // Whole milliseconds, as Grafana sends its range.
    let now = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).expect("now");
    let ctx = Interpolation {
        from: now - TimeDelta::hours(6),
        to: now,
        interval: INTERVAL,
        variables: &substitutions,
    };
    for query in &dashboard.queries {
        if let Err(e) = check_query(pool, query, &ctx, leading).await {
            failures.push(format!("{}: {e}", query.origin));
        }
    }
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_sql_runs_on_the_schema() {
    let dashboards = sql_dashboards();
    let total: usize = dashboards.iter().map(|d| d.queries.len()).sum();
    assert!(
        total >= MIN_SQL_QUERIES,
        "found {total} Postgres queries under {}; expected at least {MIN_SQL_QUERIES}",
        monitoring_dir().display()
    );

    let db = TestDatabase::create().await.expect("create database");
    let pool = PgPool::connect(&db.url)
        .await
        .expect("connect to test database");
    schema::migrate(&pool).await.expect("migrate");
    let event_types = allowed_event_types(&pool).await;
    insert_rows(&pool, &event_types).await;
    let leading = leading_columns(&pool).await;
    let mut failures = Vec::new();
    for dashboard in &dashboards {
        failures.extend(check_dashboard(&pool, dashboard, &event_types, &leading).await);
    }
    pool.close().await;
    db.drop_now().await.expect("drop test database");

    assert!(
        failures.is_empty(),
        "dashboard SQL:\n{}",
        failures.join("\n\n")
    );
    eprintln!("dashboards: {total} SQL queries ran on the schema and use indexes");
}
