//! `--via` and `--api-key`: whether records go straight to Kafka or through
//! eventpulse-api's gRPC ingestion, and the key that call needs.
//!
//! Both are typed while parsing, so a wrong URL or a key that cannot travel
//! in gRPC metadata fails with clap's one-line error naming the flag, before
//! anything connects; past parsing, a [`GrpcEndpoint`] always has a host and
//! a port, and an [`ApiKey`] is always sendable.

use std::fmt;

/// The port `eventpulse-api` serves gRPC on by default (`--grpc-addr`).
pub const DEFAULT_GRPC_PORT: u16 = 50051;

/// The path a record takes to Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// The producer's own librdkafka client.
    Kafka,
    /// eventpulse-api's `EventService`, which validates and then produces.
    Grpc(GrpcEndpoint),
}

impl Via {
    /// Parses `kafka` or `grpc://HOST[:PORT]`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.eq_ignore_ascii_case("kafka") {
            return Ok(Self::Kafka);
        }
        match raw.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("grpc") => {
                GrpcEndpoint::parse(rest).map(Self::Grpc)
            }
            _ => Err(format!(
                "{raw:?} is neither `kafka` nor `grpc://HOST:PORT` (eventpulse-api's --grpc-addr)"
            )),
        }
    }
}

/// Where eventpulse-api answers gRPC. Plain HTTP/2: the API serves no TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcEndpoint {
    /// A name, an IPv4 address, or an IPv6 address in brackets.
    host: String,
    port: u16,
}

impl GrpcEndpoint {
    /// Parses what follows `grpc://`: `HOST[:PORT]`, nothing else.
    fn parse(authority: &str) -> Result<Self, String> {
        let shape = || format!("\"grpc://{authority}\" is not grpc://HOST:PORT");
        if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
            return Err(shape());
        }
        let (host, port) = split_port(authority).ok_or_else(shape)?;
        let port = match port {
            None => DEFAULT_GRPC_PORT,
            Some(port) => port
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("{port:?} is not a port (1 to 65535)"))?,
        };
        Ok(Self {
            host: host.to_string(),
            port,
        })
    }

    /// The URI the gRPC client connects to.
    pub fn uri(&self) -> String {
        format!("http://{}:{}", self.host, self.port)
    }
}

/// Splits `host[:port]`; IPv6 hosts come in brackets (`[::1]:50051`).
fn split_port(authority: &str) -> Option<(&str, Option<&str>)> {
    if authority.starts_with('[') {
        let close = authority.find(']')?;
        let (host, rest) = authority.split_at(close + 1);
        return match rest.strip_prefix(':') {
            Some(port) => Some((host, Some(port))),
            None if rest.is_empty() => Some((host, None)),
            None => None,
        };
    }
    match authority.split_once(':') {
        Some((host, port)) if !host.is_empty() && !port.contains(':') => Some((host, Some(port))),
        Some(_) => None,
        None => Some((authority, None)),
    }
}

impl fmt::Display for GrpcEndpoint {
    /// As the user writes it in `--via`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "grpc://{}:{}", self.host, self.port)
    }
}

/// An API key for the `x-api-key` metadata entry. Its `Debug` hides the
/// value, so a logged [`crate::Config`] does not leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// A key must be printable ASCII without spaces: gRPC metadata carries
    /// nothing else, and a key that cannot be sent is better refused here
    /// than on every call.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() {
            return Err("must not be empty".into());
        }
        if !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("must be printable ASCII without spaces".into());
        }
        Ok(Self(raw.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(raw: &str) -> Result<String, String> {
        match Via::parse(raw)? {
            Via::Grpc(endpoint) => Ok(endpoint.uri()),
            Via::Kafka => Ok("kafka".into()),
        }
    }

    #[test]
    fn kafka_and_grpc_urls_are_accepted() {
        assert_eq!(endpoint("kafka").unwrap(), "kafka");
        assert_eq!(endpoint("KAFKA").unwrap(), "kafka");
        assert_eq!(
            endpoint("grpc://127.0.0.1:6000").unwrap(),
            "http://127.0.0.1:6000"
        );
        assert_eq!(
            endpoint("grpc://api.local").unwrap(),
            "http://api.local:50051"
        );
        assert_eq!(endpoint("grpc://[::1]:7000").unwrap(), "http://[::1]:7000");
        assert_eq!(endpoint("grpc://[::1]").unwrap(), "http://[::1]:50051");
    }

    #[test]
    fn anything_else_is_refused() {
        for raw in [
            "",
            "http://127.0.0.1:50051",
            "grpc://",
            "grpc://host:0",
            "grpc://host:70000",
            "grpc://host:port",
            "grpc://:50051",
            "grpc://host:1/path",
            "grpc://user@host:1",
            "grpc://::1:50051",
            "grpc://[::1]x",
        ] {
            assert!(Via::parse(raw).is_err(), "{raw:?} was accepted");
        }
    }

    #[test]
    fn the_endpoint_displays_as_written() {
        let Via::Grpc(endpoint) = Via::parse("grpc://localhost").unwrap() else {
            panic!("a gRPC URL");
        };
        assert_eq!(endpoint.to_string(), "grpc://localhost:50051");
    }

    #[test]
    fn keys_are_checked_and_hidden() {
        let key = ApiKey::parse("secret-key-0123456789").unwrap();
        assert_eq!(key.expose(), "secret-key-0123456789");
        assert_eq!(format!("{key:?}"), "ApiKey(***)");
        assert!(ApiKey::parse("").is_err());
        assert!(ApiKey::parse("two words").is_err());
        assert!(ApiKey::parse("clé-non-ascii").is_err());
    }
}
