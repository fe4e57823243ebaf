//! API keys as configured: each a [`Secret`] that nothing prints, compared in
//! constant time against every configured key (no early exit on the first
//! differing byte or the first matching key, so timing reveals neither).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::Deserialize;
use subtle::{Choice, ConstantTimeEq};

/// Shortest key accepted in the configuration: short keys are guessable.
pub const MIN_KEY_CHARS: usize = 16;

/// A string that is never printed: its `Debug` shows `***` and it has no `Display`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Self(text.to_owned()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The configured keys. Empty means ingestion is disabled.
#[derive(Clone, Default)]
pub struct ApiKeys(Arc<Vec<Secret>>);

impl ApiKeys {
    pub fn new(keys: Vec<Secret>) -> Self {
        Self(Arc::new(keys))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when `candidate` equals one of the keys. Every key is compared,
    /// each in constant time for its length.
    pub fn accepts(&self, candidate: &[u8]) -> bool {
        let matched = self.0.iter().fold(Choice::from(0), |any, key| {
            any | key.0.as_bytes().ct_eq(candidate)
        });
        bool::from(matched)
    }
}

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeys({} configured)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(list: &[&str]) -> ApiKeys {
        ApiKeys::new(
            list.iter()
                .map(|k| k.parse().expect("infallible"))
                .collect(),
        )
    }

    #[test]
    fn accepts_any_configured_key_and_nothing_else() {
        let keys = keys(&["first-key-0123456789", "second-key-0123456789"]);
        assert!(keys.accepts(b"first-key-0123456789"));
        assert!(keys.accepts(b"second-key-0123456789"));
        assert!(!keys.accepts(b"first-key-012345678"));
        assert!(!keys.accepts(b"first-key-01234567890"));
        assert!(!keys.accepts(b""));
    }

    #[test]
    fn no_keys_accept_nothing() {
        assert!(!ApiKeys::default().accepts(b""));
    }

    #[test]
    fn secrets_do_not_print() {
        let secret: Secret = "hunter2-hunter2-hunter2".parse().expect("infallible");
        assert_eq!(format!("{secret:?}"), "***");
        assert_eq!(format!("{:?}", keys(&["hunter2"])), "ApiKeys(1 configured)");
    }
}
