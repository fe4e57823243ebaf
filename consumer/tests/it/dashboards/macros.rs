//! Grafana's interpolation of a Postgres panel query, for the macros and
//! variables our dashboards use, in Grafana's order:
//!
//! 1. the front end replaces template variables (`$name`, `${name}`) and
//!    `$__interval`; a multi-value or include-All variable becomes a list of
//!    quoted literals (`'login','logout'`);
//! 2. the Postgres back end replaces `$__name(args)` macros
//!    (`pkg/tsdb/grafana-postgresql-datasource/macros.go`): any `$ident(`
//!    up to the next `)`, arguments split on commas.
//!
//! Anything else that looks like a variable or a macro is an error, not text
//! left in the SQL, so a new macro or variable cannot pass here unexpanded and
//! then fail (or mean something else) in Grafana: teach this file first.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};

/// What Grafana knows when it runs a panel's query.
pub struct Interpolation<'a> {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// `$__interval`, such as `1m`.
    pub interval: &'a str,
    /// Template variable name -> its replacement text.
    pub variables: &'a BTreeMap<String, String>,
}

/// The text Grafana substitutes for a custom variable with these values:
/// quoted literals joined by commas when the variable is multi-value or has
/// "All" (the test runs every query with All selected), the bare first
/// value otherwise.
pub fn variable_text(values: &[String], quoted_list: bool) -> String {
    if quoted_list {
        let quote = |v: &String| format!("'{}'", v.replace('\'', "''"));
        values.iter().map(quote).collect::<Vec<_>>().join(",")
    } else {
        values
            .first()
            .cloned()
            .unwrap_or_default()
            .replace('\'', "''")
    }
}

/// `sql` as the Postgres server receives it from Grafana.
pub fn interpolate(sql: &str, ctx: &Interpolation) -> Result<String, String> {
    let sql = replace_variables(sql, ctx)?;
    let sql = replace_macros(&sql, ctx)?;
    match sql.find("$__") {
        Some(at) => Err(format!("unexpanded macro at `{}`", &sql[at..])),
        None => Ok(sql),
    }
}

/// The identifier (`[_a-zA-Z0-9]*`) at the start of `text`.
fn identifier(text: &str) -> &str {
    let len = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..len]
}

fn replace_variables(sql: &str, ctx: &Interpolation) -> Result<String, String> {
    let lookup = |name: &str| match name {
        "__interval" => Some(ctx.interval.to_owned()),
        _ => ctx.variables.get(name).cloned(),
    };
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(braced) = after.strip_prefix('{') {
            let end = braced
                .find('}')
                .ok_or_else(|| format!("unclosed `${{` in `{}`", &rest[at..]))?;
            let name = &braced[..end];
            out.push_str(
                &lookup(name)
                    .ok_or_else(|| format!("unknown template variable or format `${{{name}}}`"))?,
            );
            rest = &braced[end + 1..];
            continue;
        }
        let name = identifier(after);
        match lookup(name) {
            Some(value) => out.push_str(&value),
            // A macro (or something this file does not know): for the next pass.
            None if name.starts_with("__") => out.push_str(&rest[at..at + 1 + name.len()]),
            None if name.starts_with(|c: char| c.is_ascii_alphabetic()) => {
                return Err(format!("unknown template variable `${name}`"))
            }
            // `$1`, a lone `$`, a JSON path: not Grafana's.
            None => out.push_str(&rest[at..at + 1 + name.len()]),
        }
        rest = &after[name.len()..];
    }
    out.push_str(rest);
    Ok(out)
}

fn replace_macros(sql: &str, ctx: &Interpolation) -> Result<String, String> {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let name = identifier(after);
        let Some(call) = after[name.len()..]
            .strip_prefix('(')
            .filter(|_| !name.is_empty())
        else {
            out.push('$');
            rest = after;
            continue;
        };
        let end = call
            .find(')')
            .ok_or_else(|| format!("unclosed macro call `${name}(`"))?;
        let args: Vec<&str> = call[..end].split(',').map(str::trim).collect();
        rest = &call[end + 1..];
        // Grafana's compatibility rule: `$__timeGroup(...)` directly followed
        // by a comma is a select-list item and gets `AS "time"`.
        let name = if name == "__timeGroup" && rest.starts_with(',') {
            "__timeGroupAlias"
        } else {
            name
        };
        out.push_str(&expand_macro(name, &args, ctx)?);
    }
    out.push_str(rest);
    Ok(out)
}

fn timestamp(t: DateTime<Utc>) -> String {
    format!("'{}'", t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

fn expand_macro(name: &str, args: &[&str], ctx: &Interpolation) -> Result<String, String> {
    let column = || {
        args.first()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| format!("${name} needs a column"))
    };
    Ok(match name {
        "__timeFilter" => format!(
            "{} BETWEEN {} AND {}",
            column()?,
            timestamp(ctx.from),
            timestamp(ctx.to)
        ),
        "__timeFrom" => timestamp(ctx.from),
        "__timeTo" => timestamp(ctx.to),
        // A third argument (fill) changes what Grafana does with the rows,
        // not the SQL.
        "__timeGroup" | "__timeGroupAlias" => {
            let interval = args
                .get(1)
                .ok_or_else(|| format!("${name} needs a column and an interval"))?;
            let seconds = interval_seconds(interval.trim_matches('\''))?;
            let group = format!(
                "floor(extract(epoch from {})/{seconds})*{seconds}",
                column()?
            );
            match name {
                "__timeGroupAlias" => format!("{group} AS \"time\""),
                _ => group,
            }
        }
        _ => return Err(format!("unknown macro `${name}({})`", args.join(","))),
    })
}

/// Seconds in a Grafana interval such as `1h`, `5m`, `30s` or `100ms`.
fn interval_seconds(interval: &str) -> Result<f64, String> {
    let digits = interval.len()
        - interval
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .len();
    let (count, unit) = interval.split_at(digits);
    let count: f64 = count
        .parse()
        .map_err(|_| format!("interval `{interval}` has no count"))?;
    let unit_seconds = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        "w" => 604_800.0,
        _ => {
            return Err(format!(
                "interval `{interval}`: unit `{unit}` not known here"
            ))
        }
    };
    Ok(count * unit_seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(sql: &str) -> Result<String, String> {
        let variables = BTreeMap::from([(
            "event_type".to_owned(),
            variable_text(&["login".into(), "it's".into()], true),
        )]);
        let ctx = Interpolation {
            from: "2026-01-02T03:04:05.250Z".parse().expect("from"),
            to: "2026-01-02T09:04:05Z".parse().expect("to"),
            interval: "5m",
            variables: &variables,
        };
        interpolate(sql, &ctx)
    }

    #[test]
    fn time_filter_and_bounds_are_quoted_utc_timestamps() {
        assert_eq!(
            run("WHERE $__timeFilter(e.occurred_at) OR x < $__timeTo() OR x > $__timeFrom()")
                .expect("expands"),
            "WHERE e.occurred_at BETWEEN '2026-01-02T03:04:05.250Z' AND '2026-01-02T09:04:05Z' \
             OR x < '2026-01-02T09:04:05Z' OR x > '2026-01-02T03:04:05.250Z'"
        );
    }

    #[test]
    fn time_group_takes_quoted_and_variable_intervals() {
        assert_eq!(
            run("SELECT $__timeGroupAlias(t, '1h'), $__timeGroup(t, $__interval) AS b")
                .expect("expands"),
            "SELECT floor(extract(epoch from t)/3600)*3600 AS \"time\", \
             floor(extract(epoch from t)/300)*300 AS b"
        );
        // Grafana's rule: a bare $__timeGroup followed by a comma is aliased.
        assert_eq!(
            run("SELECT $__timeGroup(t, 1m), v").expect("expands"),
            "SELECT floor(extract(epoch from t)/60)*60 AS \"time\", v"
        );
    }

    #[test]
    fn variables_become_quoted_lists() {
        assert_eq!(
            run("x IN ($event_type) OR y IN (${event_type})").expect("expands"),
            "x IN ('login','it''s') OR y IN ('login','it''s')"
        );
        assert_eq!(variable_text(&["a".into(), "b".into()], false), "a");
    }

    #[test]
    fn anything_unknown_is_an_error() {
        for sql in [
            "$__unixEpochFilter(t)",
            "$__interval_ms",
            "$__timeGroup(t, 1y)",
            "$__timeFilter()",
            "$nope",
            "${event_type:csv}",
            "$__timeFilter(t",
        ] {
            assert!(run(sql).is_err(), "{sql} was accepted: {:?}", run(sql));
        }
        // Not Grafana's: positional parameters and JSON paths stay.
        assert_eq!(run("$1 @? '$.a'").expect("expands"), "$1 @? '$.a'");
    }
}
