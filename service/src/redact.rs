//! Secret-safe display of URLs. Database and Redis URLs may carry a password,
//! so a URL reaches a log line or an error message only through
//! [`redact_url`].

/// The URL with any password replaced by `***`, safe to log or print.
/// Something that is not a URL is not shown at all: it may be a mistyped URL
/// that still holds the password.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        Ok(url) => url.to_string(),
        Err(_) => "<unparseable URL>".to_owned(),
    }
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
}
