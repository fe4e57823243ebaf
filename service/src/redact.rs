//! Secret-safe display of URLs. Database and Redis URLs may carry a password,
//! in the user-info part or as a query parameter (libpq accepts
//! `?password=...`), so a URL reaches a log line or an error message only
//! through [`redact_url`].

/// Query parameter names (compared case-insensitively) whose values are
/// secrets: libpq's `password` and `sslpassword`, and the names other clients
/// and proxies commonly use for passwords and tokens.
const SECRET_PARAMETERS: &[&str] = &[
    "password",
    "sslpassword",
    "pass",
    "pwd",
    "token",
    "secret",
    "key",
    "api_key",
    "apikey",
    "auth",
];

const HIDDEN: &str = "***";

/// The URL with any password, and the value of any secret query parameter,
/// replaced by `***`, safe to log or print.
/// Something that is not a URL is not shown at all: it may be a mistyped URL
/// that still holds the password.
pub fn redact_url(raw: &str) -> String {
    let Ok(mut url) = url::Url::parse(raw) else {
        return "<unparseable URL>".to_owned();
    };
    if url.password().is_some() {
        let _ = url.set_password(Some(HIDDEN));
    }
    if let Some(query) = url.query().map(redact_query) {
        url.set_query(Some(&query));
    }
    url.to_string()
}

/// `query` with the values of secret parameters replaced. The query is
/// rewritten piece by piece rather than through `query_pairs_mut`, which would
/// re-encode every other parameter (`%20` becoming `+`, for instance): the
/// rest of the URL is shown exactly as configured.
fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_secret_parameter(name) => format!("{name}={HIDDEN}"),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Whether `name` (as written in the URL, possibly percent-encoded) names a
/// secret. It is decoded first so that `pass%77ord` cannot slip through.
fn is_secret_parameter(name: &str) -> bool {
    let decoded: String = url::form_urlencoded::parse(name.as_bytes())
        .map(|(key, _)| key.into_owned())
        .collect();
    SECRET_PARAMETERS
        .iter()
        .any(|secret| decoded.eq_ignore_ascii_case(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_passwords_only() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(redact_url("127.0.0.1:secret@h"), "<unparseable URL>");
    }

    #[test]
    fn hides_secret_query_parameters_and_keeps_the_others() {
        assert_eq!(
            redact_url("postgres://u@h/db?password=secret&sslmode=require"),
            "postgres://u@h/db?password=***&sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://u:p@h/db?sslmode=require&sslpassword=s2&application_name=a%20b"),
            "postgres://u:***@h/db?sslmode=require&sslpassword=***&application_name=a%20b"
        );
    }

    #[test]
    fn every_secret_name_is_hidden_whatever_its_case() {
        for name in SECRET_PARAMETERS {
            for spelled in [name.to_string(), name.to_uppercase()] {
                let redacted = redact_url(&format!("redis://h/0?{spelled}=hunter2&db=1"));
                assert_eq!(redacted, format!("redis://h/0?{spelled}=***&db=1"));
            }
        }
        assert_eq!(
            redact_url("postgres://h/db?Pass%77ord=hunter2"),
            "postgres://h/db?Pass%77ord=***"
        );
    }

    #[test]
    fn similar_names_and_valueless_parameters_are_kept() {
        for url in [
            "postgres://h/db?passfile=/tmp/pgpass&keepalives=1",
            "postgres://h/db?password&sslmode=disable",
            "postgres://h/db?a=1&&b=2",
        ] {
            assert_eq!(redact_url(url), url);
        }
    }
}
