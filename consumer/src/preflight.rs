//! Start-up checks of the dependencies' configuration. They warn loudly and
//! never stop the consumer: each finds a set-up under which the consumer still
//! runs, but gives weaker guarantees than the design promises.
//!
//! - [`check_redis_version`]: the dedup claim is `SET key "p" NX GET PX ttl`
//!   ([`crate::dedup`]), and Redis accepts `NX` together with `GET` only since
//!   7.0. An older Redis answers every claim with an error, so the filter
//!   stays degraded and Postgres alone deduplicates: correct, but every
//!   replayed event costs a Postgres round trip.
//! - [`check_durability`]: with `synchronous_commit = off` (or `fsync = off`)
//!   Postgres acknowledges a commit before it is on disk. After a Postgres
//!   crash the last batches can be gone although Kafka offsets were committed
//!   and Redis marked their events "stored", so a replay would drop them as
//!   duplicates: events lost, the one thing the pipeline must never do.

use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;

/// The first Redis version whose `SET` takes `NX` and `GET` together.
const REDIS_WITH_SET_NX_GET: (u32, u32) = (7, 0);

/// What the Redis at start-up means for the fast-path duplicate filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisSupport {
    /// 7.0 or newer: the filter works.
    Supported { version: String },
    /// Older than 7.0: every claim fails, dedup is degraded to Postgres only.
    TooOld { version: String },
    /// Redis answered, but not with a version this can read: the filter is
    /// tried anyway, and degrades on its own if the claim is refused.
    Unknown,
    /// Redis did not answer in time; the filter keeps probing it.
    Unreachable,
}

impl RedisSupport {
    /// Classifies a `redis_version` such as `7.0.15`. Only the major and
    /// minor numbers count; anything else after them (`-rc1`) is ignored.
    pub fn from_version(version: &str) -> Self {
        let mut numbers = version
            .split(['.', '-'])
            .map(|part| part.trim().parse::<u32>().ok());
        let (Some(Some(major)), minor) = (numbers.next(), numbers.next()) else {
            return Self::Unknown;
        };
        let minor = minor.flatten().unwrap_or(0);
        let version = version.to_owned();
        if (major, minor) >= REDIS_WITH_SET_NX_GET {
            Self::Supported { version }
        } else {
            Self::TooOld { version }
        }
    }

    /// Classifies the reply to `INFO server` by its `redis_version:` line.
    pub fn from_info(info: &str) -> Self {
        info.lines()
            .find_map(|line| line.trim().strip_prefix("redis_version:"))
            .map_or(Self::Unknown, Self::from_version)
    }
}

/// Asks Redis for its version (`INFO server`) within `timeout` and logs one
/// warning unless the dedup filter will work. The line names no address: the
/// URL may carry a password and is shown elsewhere only redacted.
pub async fn check_redis_version(client: &redis::Client, timeout: Duration) -> RedisSupport {
    let info = async {
        let mut connection = client.get_multiplexed_async_connection().await?;
        redis::cmd("INFO")
            .arg("server")
            .query_async::<String>(&mut connection)
            .await
    };
    let support = match tokio::time::timeout(timeout, info).await {
        Ok(Ok(info)) => RedisSupport::from_info(&info),
        // An error reply with a code (ERR, NOPERM...) means Redis is there but
        // refused INFO; anything else (I/O, refused connection, failed AUTH)
        // means the filter cannot use it either way.
        Ok(Err(e)) if e.code().is_some() => {
            tracing::warn!(error = %e, "Redis refused INFO server, so its version is unknown: dedup needs Redis 7.0 or newer");
            return RedisSupport::Unknown;
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "Redis is unreachable at start-up: Postgres alone deduplicates until it answers");
            return RedisSupport::Unreachable;
        }
        Err(_) => {
            tracing::warn!(
                ?timeout,
                "Redis did not answer at start-up: Postgres alone deduplicates until it answers"
            );
            return RedisSupport::Unreachable;
        }
    };
    match &support {
        RedisSupport::Supported { .. } | RedisSupport::Unreachable => {}
        RedisSupport::TooOld { version } => tracing::warn!(
            redis_version = %version,
            "Redis {version} is older than 7.0 and refuses the dedup claim (SET with NX and GET together): dedup is degraded to Postgres only; upgrade Redis to 7.0 or newer"
        ),
        RedisSupport::Unknown => tracing::warn!(
            "Redis did not report a readable redis_version: dedup needs Redis 7.0 or newer and degrades to Postgres only on an older one"
        ),
    }
    support
}

/// Whether Postgres has a commit on disk before it acknowledges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `fsync` on and `synchronous_commit` anything but `off`.
    Durable,
    /// `synchronous_commit = off`: a crash loses the last commits (up to
    /// three times `wal_writer_delay`), although the database stays consistent.
    AsyncCommit,
    /// `fsync = off`: nothing is forced to disk; a crash can lose any recent
    /// commit and corrupt the cluster. Reported over `AsyncCommit` when both.
    NoFsync,
}

impl Durability {
    /// Classifies the values `SHOW synchronous_commit` and `SHOW fsync` print.
    pub fn from_settings(synchronous_commit: &str, fsync: &str) -> Self {
        if fsync.eq_ignore_ascii_case("off") {
            Self::NoFsync
        } else if synchronous_commit.eq_ignore_ascii_case("off") {
            Self::AsyncCommit
        } else {
            Self::Durable
        }
    }
}

/// Reads the durability settings the consumer's own sessions get (`SHOW`
/// reflects per-database and per-role overrides) and logs an error when
/// commits may not survive a Postgres crash. Errors only if Postgres cannot
/// be asked.
pub async fn check_durability(pool: &PgPool) -> anyhow::Result<Durability> {
    let synchronous_commit = show(pool, "synchronous_commit").await?;
    let fsync = show(pool, "fsync").await?;
    let durability = Durability::from_settings(&synchronous_commit, &fsync);
    if durability != Durability::Durable {
        let database: String = sqlx::query_scalar("SELECT current_database()")
            .fetch_one(pool)
            .await
            .context("asking Postgres for the current database")?;
        tracing::error!(
            synchronous_commit = %synchronous_commit,
            fsync = %fsync,
            "Postgres acknowledges commits before they are on disk (synchronous_commit = {synchronous_commit}, fsync = {fsync}): \
             after a Postgres crash the last batches it reported committed can be gone while Kafka offsets \
             and Redis \"stored\" marks already count them, so those events would be lost. \
             Fix: ALTER SYSTEM SET synchronous_commit = on; ALTER SYSTEM SET fsync = on; SELECT pg_reload_conf(); \
             or, for this database only, ALTER DATABASE \"{database}\" SET synchronous_commit = on (new sessions pick it up)"
        );
    }
    Ok(durability)
}

async fn show(pool: &PgPool, setting: &'static str) -> anyhow::Result<String> {
    sqlx::query_scalar(&format!("SHOW {setting}"))
        .fetch_one(pool)
        .await
        .with_context(|| format!("reading the Postgres setting {setting}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn supported(version: &str) -> RedisSupport {
        RedisSupport::Supported {
            version: version.into(),
        }
    }

    #[test]
    fn redis_7_0_is_the_first_with_set_nx_get() {
        for version in ["7.0.15", "7.0.0", "7.2.4", "8.0-m02", "255.255.255", "7"] {
            assert_eq!(RedisSupport::from_version(version), supported(version));
        }
        for version in ["6.2.14", "6.0.0", "5.0.7"] {
            assert_eq!(
                RedisSupport::from_version(version),
                RedisSupport::TooOld {
                    version: version.into()
                }
            );
        }
        for version in ["", "garbage", "v7.0.1", ".7"] {
            assert_eq!(RedisSupport::from_version(version), RedisSupport::Unknown);
        }
    }

    #[test]
    fn the_version_comes_from_the_redis_version_line() {
        let info = "# Server\r\nredis_version:6.2.14\r\nredis_git_sha1:00000000\r\nredis_mode:standalone\r\n";
        assert_eq!(
            RedisSupport::from_info(info),
            RedisSupport::TooOld {
                version: "6.2.14".into()
            }
        );
        assert_eq!(
            RedisSupport::from_info("# Server\r\nredis_version:7.0.15\r\n"),
            supported("7.0.15")
        );
        assert_eq!(
            RedisSupport::from_info("# Server\r\nredis_mode:standalone\r\n"),
            RedisSupport::Unknown
        );
        assert_eq!(RedisSupport::from_info("garbage"), RedisSupport::Unknown);
    }

    #[test]
    fn off_is_what_loses_commits() {
        for synchronous_commit in ["on", "local", "remote_write", "remote_apply"] {
            assert_eq!(
                Durability::from_settings(synchronous_commit, "on"),
                Durability::Durable
            );
        }
        assert_eq!(
            Durability::from_settings("off", "on"),
            Durability::AsyncCommit
        );
        assert_eq!(Durability::from_settings("on", "off"), Durability::NoFsync);
        assert_eq!(Durability::from_settings("off", "off"), Durability::NoFsync);
    }
}
