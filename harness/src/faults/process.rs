//! Faults of the consumer process itself: SIGKILL at random moments, a
//! rebalance storm, and adversarial input.

use std::time::Duration;

use rand::Rng;

use super::run::Run;
use super::{FaultArgs, Row};
use crate::services::Services;

/// SIGKILL the consumer at a random moment while it makes progress, restart
/// it at once, `args.kills()` times.
pub async fn kill_nine(args: &FaultArgs) -> anyhow::Result<Row> {
    // Each kill costs a session timeout (6 s) before the partitions return,
    // so the traffic lasts about 8 s per kill and every kill lands mid-stream.
    let rate = (args.events() / (8 * u64::from(args.kills()))).max(100);
    let mut run = Run::start(args, Services::from_env(), 1, rate).await?;
    let mut kills = 0;
    while kills < args.kills() {
        let before = run.progress().await?;
        if !run.wait_progress(before, Duration::from_secs(60)).await? {
            break;
        }
        let pause = rand::rng().random_range(0..800);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        run.replace(0)?;
        kills += 1;
    }
    run.note(format!("{kills} kills"));
    anyhow::ensure!(
        kills == args.kills(),
        "only {kills} of {} kills landed while data flowed",
        args.kills()
    );
    run.finish("kill -9 repeatedly").await
}

/// Three consumers; one joins, one is killed, one leaves cleanly.
pub async fn rebalance_storm(args: &FaultArgs) -> anyhow::Result<Row> {
    let rate = args.events() / args.traffic_secs();
    let mut run = Run::start(args, Services::from_env(), 3, rate).await?;
    run.wait_progress(0, Duration::from_secs(60)).await?;
    let fourth = run.add_consumer()?;
    run.fault();
    tokio::time::sleep(args.fault_gap()).await;
    run.kill(0);
    tokio::time::sleep(args.fault_gap()).await;
    run.terminate(1)?;
    run.note(format!("joined #{fourth}, killed #0, #1 left cleanly"));
    run.finish("rebalance storm").await
}

/// A zombie: one of two consumers is frozen (SIGSTOP) past its session
/// timeout, so its partitions move to the other while it still holds a batch;
/// thawed (SIGCONT), it finishes that batch late. Its late write must neither
/// duplicate rows nor move a partition's offsets back.
pub async fn zombie(args: &FaultArgs) -> anyhow::Result<Row> {
    let rate = args.events() / args.traffic_secs();
    let mut run = Run::start(args, Services::from_env(), 2, rate).await?;
    run.wait_progress(0, Duration::from_secs(60)).await?;
    run.signal(0, "STOP")?;
    // The session timeout is 6 s: the group must evict the frozen member.
    tokio::time::sleep(Duration::from_secs(9)).await;
    run.signal(0, "CONT")?;
    run.note("#0 frozen 9 s (session timeout 6 s), then thawed");
    run.finish("zombie (SIGSTOP/SIGCONT)").await
}

/// Every kind of garbage next to the seeded traffic; the consumer must
/// dead-letter each one and still exit cleanly.
pub async fn adversarial(args: &FaultArgs) -> anyhow::Result<Row> {
    let rate = args.events() / args.traffic_secs();
    let mut run = Run::start(args, Services::from_env(), 1, rate).await?;
    let garbage = garbage();
    run.produce_raw("adversary", &garbage).await?;
    run.note(format!("{} hostile messages", garbage.len()));
    run.finish("adversarial input").await
}

/// Random bytes, huge and deeply nested documents, broken UTF-8, NUL bytes,
/// extreme numbers and absurd timestamps.
fn garbage() -> Vec<Vec<u8>> {
    let mut rng = rand::rng();
    let event = |ts: &str, payload: &str| {
        format!(
            r#"{{"eventId":"{}","type":"logout","timestamp":"{ts}","payload":{payload}}}"#,
            uuid::Uuid::new_v4()
        )
        .into_bytes()
    };
    let now = chrono::Utc::now().to_rfc3339();
    let mut all: Vec<Vec<u8>> = (0..50)
        .map(|_| {
            (0..rng.random_range(1..2000))
                .map(|_| rng.random())
                .collect()
        })
        .collect();
    all.extend([
        vec![b'a'; 900_000],
        format!("{}{}", "[".repeat(5000), "]".repeat(5000)).into_bytes(),
        event(
            &now,
            &format!(
                r#"{{"userId":"u","duration":1,"ip":"::1","x":{}1{}}}"#,
                "[".repeat(300),
                "]".repeat(300)
            ),
        ),
        b"\xc3\x28\xa0\xa1".to_vec(),
        invalid_utf8_inside(event(&now, r#"{"userId":"u@@","duration":1,"ip":"::1"}"#)),
        b"\0\0\0\0".to_vec(),
        event(&now, r#"{"userId":"u\u0000","duration":1,"ip":"::1"}"#),
        event(&now, r#"{"userId":"u","duration":1e308,"ip":"::1"}"#),
        event(
            &now,
            r#"{"userId":"u","duration":18446744073709551616,"ip":"::1"}"#,
        ),
        event(&now, r#"{"userId":"u","duration":-1e400,"ip":"::1"}"#),
        event(
            &now,
            r#"{"userId":"u","duration":-9223372036854775808,"ip":"::1"}"#,
        ),
        event(
            "9999-12-31T23:59:59Z",
            r#"{"userId":"u","duration":1,"ip":"::1"}"#,
        ),
        event(
            "0001-01-01T00:00:00Z",
            r#"{"userId":"u","duration":1,"ip":"::1"}"#,
        ),
        event(
            "+275760-09-13T00:00:00Z",
            r#"{"userId":"u","duration":1,"ip":"::1"}"#,
        ),
        event(
            &now,
            &format!(
                r#"{{"userId":"{}","duration":1,"ip":"::1"}}"#,
                "u".repeat(129)
            ),
        ),
        Vec::new(),
        b"   ".to_vec(),
        b"null".to_vec(),
        b"\"just a string\"".to_vec(),
        b"{}".to_vec(),
    ]);
    all
}

/// Replaces the `@@` in a JSON document with bytes that are not UTF-8.
fn invalid_utf8_inside(mut bytes: Vec<u8>) -> Vec<u8> {
    if let Some(at) = bytes.windows(2).position(|w| w == b"@@") {
        bytes[at] = 0xff;
        bytes[at + 1] = 0xfe;
    }
    bytes
}
