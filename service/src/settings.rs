//! Helpers for layered settings: each service declares its own `Layer` (one
//! `Option` per setting, filled by clap from flags and `EVENTPULSE_*`
//! variables, or by serde from the TOML file) and resolves it into its own
//! `Settings` with the checks below.
//!
//! Every check reports a problem the same way, as one line naming both the flag
//! and the variable ([`ConfigError::Invalid`]), because the user may have set
//! either. No check ever echoes a URL it rejects: it may carry a password.

use std::fmt::Display;
use std::path::Path;

use serde::de::DeserializeOwned;

/// A setting that could not be used, named the way the user set it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid setting --{flag} (EVENTPULSE_{env}): {problem}")]
    Invalid {
        flag: String,
        env: String,
        problem: String,
    },
    #[error("cannot read config file {path}: {problem}")]
    File { path: String, problem: String },
}

/// A setting as the user names it. Its snake_case name is the file's key; the
/// flag is the name with `-` for `_`; the variable is `EVENTPULSE_` and the
/// name in capitals, unless [`Key::env`] says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key<'a> {
    name: &'a str,
    env: Option<&'a str>,
}

impl<'a> Key<'a> {
    pub const fn new(name: &'a str) -> Self {
        Self { name, env: None }
    }

    /// The same setting read from `EVENTPULSE_{env}`: for a variable that is
    /// not named after its flag, such as one that must not collide with
    /// another service's variable when both share an environment.
    pub const fn env(self, env: &'a str) -> Self {
        Self {
            env: Some(env),
            ..self
        }
    }

    /// The long flag, without its leading `--`.
    pub fn flag(&self) -> String {
        self.name.replace('_', "-")
    }

    /// The environment variable, without its `EVENTPULSE_` prefix.
    pub fn variable(&self) -> String {
        self.env
            .map_or_else(|| self.name.to_uppercase(), str::to_owned)
    }
}

impl<'a> From<&'a str> for Key<'a> {
    fn from(name: &'a str) -> Self {
        Self::new(name)
    }
}

/// The error for a setting whose value cannot be used, and why.
pub fn invalid<'k>(key: impl Into<Key<'k>>, problem: impl Into<String>) -> ConfigError {
    let key = key.into();
    ConfigError::Invalid {
        flag: key.flag(),
        env: key.variable(),
        problem: problem.into(),
    }
}

/// `value` (or `default` when no layer said anything), if within `min..=max`.
pub fn in_range<'k, T: PartialOrd + Display + Copy>(
    key: impl Into<Key<'k>>,
    value: Option<T>,
    default: T,
    min: T,
    max: T,
) -> Result<T, ConfigError> {
    let value = value.unwrap_or(default);
    if value < min || value > max {
        return Err(invalid(
            key,
            format!("must be between {min} and {max}, got {value}"),
        ));
    }
    Ok(value)
}

/// `value` (or `default`), unless it is empty or only white space.
pub fn non_empty<'k>(
    key: impl Into<Key<'k>>,
    value: Option<String>,
    default: &str,
) -> Result<String, ConfigError> {
    let value = value.unwrap_or_else(|| default.to_owned());
    if value.trim().is_empty() {
        return Err(invalid(key, "must not be empty"));
    }
    Ok(value)
}

/// `value` (or `default`), if it parses as a URL with one of `schemes`.
pub fn url_with_scheme<'k>(
    key: impl Into<Key<'k>>,
    value: Option<String>,
    default: &str,
    schemes: &[&str],
) -> Result<String, ConfigError> {
    let value = value.unwrap_or_else(|| default.to_owned());
    match url::Url::parse(&value) {
        // Without `//` there is no user/host section, so a password in it
        // could not be masked when the URL is shown: refuse such URLs.
        Ok(url) if !url.has_authority() => Err(invalid(
            key,
            "must look like scheme://[user[:password]@]host[:port]/...",
        )),
        Ok(url) if schemes.contains(&url.scheme()) => Ok(value),
        Ok(url) => Err(invalid(
            key,
            format!("scheme {:?} is not one of {schemes:?}", url.scheme()),
        )),
        // The parse error never echoes the URL, so no password leaks here.
        Err(e) => Err(invalid(key, format!("not a URL: {e}"))),
    }
}

/// Extra librdkafka properties, `KEY=VALUE` each (`-X` /
/// `EVENTPULSE_KAFKA_PROPERTIES` in every service), trimmed. The value may be
/// empty or contain `=`; the key may not be empty.
pub fn parse_properties(raw: Vec<String>) -> Result<Vec<(String, String)>, ConfigError> {
    let key = Key::new("kafka_property").env("KAFKA_PROPERTIES");
    raw.into_iter()
        .map(|item| match item.split_once('=') {
            Some((name, value)) if !name.trim().is_empty() => {
                Ok((name.trim().to_owned(), value.trim().to_owned()))
            }
            _ => Err(invalid(key, format!("expected KEY=VALUE, got {item:?}"))),
        })
        .collect()
}

/// The layer a TOML file says, with the same keys as the long flags
/// (snake_case). A `Layer` that denies unknown fields makes a misspelt key an
/// error that names it, instead of a setting silently ignored.
pub fn read_file_layer<L: DeserializeOwned>(path: &Path) -> Result<L, ConfigError> {
    let file_error = |problem: String| ConfigError::File {
        path: path.display().to_string(),
        problem,
    };
    let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
    toml::from_str(&text).map_err(|e| file_error(e.message().to_owned()))
}

/// A layer of settings that can be put over a lower one;
/// [`layer_over!`](crate::layer_over) implements it.
pub trait Layered: Sized {
    /// This layer where it says something, `lower` elsewhere.
    fn over(self, lower: Self) -> Self;
}

/// `upper` (flags and environment, which clap has already merged) over the
/// TOML file at `file`, when one was named.
pub fn over_file<L>(upper: L, file: Option<&Path>) -> Result<L, ConfigError>
where
    L: Layered + Default + DeserializeOwned,
{
    let lower = match file {
        Some(path) => read_file_layer(path)?,
        None => L::default(),
    };
    Ok(upper.over(lower))
}

/// Implements [`Layered`] for a `Layer` of `Option` fields, and gives it the
/// same `over(self, lower) -> Self` as an inherent method (no import needed):
/// this layer where it says something, `lower` elsewhere. The fields are
/// listed, not discovered, so that a field missing from the list does not
/// compile (the struct literal is incomplete) instead of being dropped.
///
/// ```
/// #[derive(Default)]
/// struct Layer {
///     topic: Option<String>,
///     batch_size: Option<usize>,
/// }
/// eventpulse_service::layer_over!(Layer { topic, batch_size });
///
/// let file = Layer { topic: Some("t".into()), batch_size: Some(10) };
/// let flags = Layer { batch_size: Some(20), ..Layer::default() };
/// let merged = flags.over(file);
/// assert_eq!((merged.topic.as_deref(), merged.batch_size), (Some("t"), Some(20)));
/// ```
#[macro_export]
macro_rules! layer_over {
    ($layer:ident { $($field:ident),* $(,)? }) => {
        impl $crate::settings::Layered for $layer {
            fn over(self, lower: Self) -> Self {
                $layer { $($field: self.$field.or(lower.$field)),* }
            }
        }

        impl $layer {
            /// This layer where it says something, `lower` elsewhere.
            pub fn over(self, lower: $layer) -> $layer {
                <$layer as $crate::settings::Layered>::over(self, lower)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_flag_and_the_variable() {
        let err = in_range("batch_size", Some(0), 2000, 1, 10_000).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid setting --batch-size (EVENTPULSE_BATCH_SIZE): must be between 1 and 10000, got 0"
        );
    }

    #[test]
    fn a_variable_may_be_named_apart_from_its_flag() {
        let key = Key::new("db_pool_size").env("API_DB_POOL_SIZE");
        let err = in_range(key, Some(0), 8, 1, 100).unwrap_err().to_string();
        assert!(
            err.starts_with("invalid setting --db-pool-size (EVENTPULSE_API_DB_POOL_SIZE)"),
            "{err}"
        );
    }

    #[test]
    fn defaults_fill_what_no_layer_said() {
        assert_eq!(in_range("n", None, 5, 1, 10).unwrap(), 5);
        assert_eq!(non_empty("topic", None, "events").unwrap(), "events");
        assert!(non_empty("topic", Some("  ".into()), "events").is_err());
    }

    #[test]
    fn urls_without_an_authority_are_refused_before_they_can_leak() {
        let schemes = &["postgres", "postgresql"];
        let err = url_with_scheme(
            "database_url",
            Some("postgres:/u:pw@h/db".into()),
            "",
            schemes,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("scheme://") && !err.contains("pw"), "{err}");
        let socket = url_with_scheme(
            "database_url",
            Some("postgres:///db?host=/run/postgresql".into()),
            "",
            schemes,
        );
        assert!(
            socket.is_ok(),
            "a Unix-socket URL keeps working: {socket:?}"
        );
    }

    #[test]
    fn urls_need_a_listed_scheme_and_are_never_echoed() {
        let schemes = &["postgres", "postgresql"];
        let ok = url_with_scheme("database_url", Some("postgres://h/db".into()), "", schemes);
        assert_eq!(ok.unwrap(), "postgres://h/db");
        let wrong = url_with_scheme(
            "database_url",
            Some("mysql://u:pw@h/db".into()),
            "",
            schemes,
        );
        let err = wrong.unwrap_err().to_string();
        assert!(
            err.contains("--database-url") && !err.contains("pw@"),
            "{err}"
        );
    }

    #[test]
    fn properties_are_key_equals_value() {
        let parsed = parse_properties(vec![" a = 1 ".into(), "debug=broker,topic".into()]);
        assert_eq!(
            parsed.unwrap(),
            [
                ("a".into(), "1".into()),
                ("debug".into(), "broker,topic".into())
            ]
        );
        let err = parse_properties(vec!["novalue".into()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid setting --kafka-property (EVENTPULSE_KAFKA_PROPERTIES): \
             expected KEY=VALUE, got \"novalue\""
        );
    }

    #[test]
    fn a_missing_file_is_named() {
        let err = read_file_layer::<toml::Table>(Path::new("/nonexistent/eventpulse.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("cannot read config file /nonexistent/eventpulse.toml: "),
            "{err}"
        );
    }
}
