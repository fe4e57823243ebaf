//! The calls of docs/api.md's `grpcurl` commands, made with the real
//! grpcurl against the running service: reflection lists and describes the
//! service (grpcurl needs no .proto), the standard health check answers, and
//! a Push with the key reaches the topic while one without it is refused.
//!
//! Needs grpcurl: `EVENTPULSE_GRPCURL_BIN` names it (`scripts/test.sh` sets
//! it from `scripts/install-grpcurl.sh`), else `grpcurl` on PATH. That one is
//! grpcurl 1.8.6, which asks only reflection v1alpha, so this test covers
//! v1alpha and `grpc.rs`'s tonic client covers v1.

use std::process::Output;
use std::time::Duration;

use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::{read_topic, Api, Stack, KEY};

/// One call: grpcurl connects, reflects and answers well within this.
const GRPCURL_PATIENCE: Duration = Duration::from_secs(60);

/// A grpcurl of docs/api.md: plaintext, against this API's gRPC address.
struct Grpcurl {
    bin: String,
    addr: String,
}

/// What one grpcurl run printed, and whether it exited 0.
struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// The grpcurl to run, checked before the test makes its topic and database.
fn grpcurl_bin() -> String {
    let bin = std::env::var("EVENTPULSE_GRPCURL_BIN")
        .ok()
        .filter(|bin| !bin.is_empty())
        .unwrap_or_else(|| "grpcurl".to_owned());
    let runs = std::process::Command::new(&bin)
        .arg("-version")
        .output()
        .is_ok_and(|output| output.status.success());
    assert!(
        runs,
        "cannot run {bin}: run scripts/install-grpcurl.sh and set EVENTPULSE_GRPCURL_BIN \
         to the path it prints (scripts/test.sh does)"
    );
    bin
}

impl Grpcurl {
    fn new(bin: String, api: &Api) -> Self {
        let addr = api.grpc.trim_start_matches("http://").to_owned();
        Self { bin, addr }
    }

    /// `grpcurl -plaintext [-H x-api-key: KEY] [-d DATA] ADDR ARGS...`
    async fn run(&self, key: Option<&str>, data: Option<&Value>, args: &[&str]) -> Run {
        let mut command = tokio::process::Command::new(&self.bin);
        command.arg("-plaintext");
        if let Some(key) = key {
            command.args(["-H", &format!("x-api-key: {key}")]);
        }
        if let Some(data) = data {
            command.args(["-d", &data.to_string()]);
        }
        command.arg(&self.addr).args(args).kill_on_drop(true);
        let output: Output = tokio::time::timeout(GRPCURL_PATIENCE, command.output())
            .await
            .expect("grpcurl finishes")
            .expect("grpcurl runs");
        Run {
            ok: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// A call that must succeed; its JSON answer.
    async fn call(&self, key: Option<&str>, data: &Value, method: &str) -> Value {
        let run = self.run(key, Some(data), &[method]).await;
        assert!(run.ok, "{method} failed: {}{}", run.stdout, run.stderr);
        serde_json::from_str(&run.stdout).expect("grpcurl prints the answer as JSON")
    }
}

/// docs/api.md's login, with a fresh id and a recent timestamp.
fn login(id: Uuid) -> Value {
    let at = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    json!({"fields": {
        "eventId": id.to_string(), "type": "login", "timestamp": at,
        "payload": {"userId": "user-42", "ip": "203.0.113.7", "device": "Firefox"}
    }})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_lists_describes_checks_health_and_pushes_with_the_key() {
    let bin = grpcurl_bin();
    let stack = Stack::new(1).await;
    let api = stack.start_api(stack.layer()).await;
    let grpcurl = Grpcurl::new(bin, &api);

    let list = grpcurl.run(None, None, &["list"]).await;
    assert!(list.ok, "list failed: {}", list.stderr);
    let services: Vec<&str> = list.stdout.lines().collect();
    for service in ["eventpulse.v1.EventService", "grpc.health.v1.Health"] {
        assert!(services.contains(&service), "{service} in {services:?}");
    }
    let described = grpcurl
        .run(None, None, &["describe", "eventpulse.v1.EventService"])
        .await;
    assert!(described.ok, "describe failed: {}", described.stderr);
    for rpc in ["rpc Push ( .eventpulse.v1.Event )", "rpc PushBatch"] {
        assert!(described.stdout.contains(rpc), "{}", described.stdout);
    }
    let health = json!({"service": "eventpulse.v1.EventService"});
    let status = grpcurl
        .call(None, &health, "grpc.health.v1.Health/Check")
        .await;
    assert_eq!(status, json!({"status": "SERVING"}));

    let push = "eventpulse.v1.EventService/Push";
    let refused = grpcurl
        .run(None, Some(&login(Uuid::new_v4())), &[push])
        .await;
    assert!(!refused.ok, "{}", refused.stdout);
    assert!(
        refused.stderr.contains("Code: Unauthenticated"),
        "{}",
        refused.stderr
    );
    let id = Uuid::new_v4();
    let ack = grpcurl.call(Some(KEY), &login(id), push).await;
    assert_eq!(ack, json!({"eventId": id.to_string()}));

    let topic = read_topic(&stack.topic, 1);
    assert_eq!(topic.len(), 1, "only the keyed Push reached the topic");
    let (key, value) = &topic[0];
    assert_eq!(key, "user-42");
    let event: Value = serde_json::from_slice(value).expect("JSON");
    assert_eq!(event["eventId"], id.to_string());
    assert_eq!(event["payload"]["device"], "Firefox");
    api.stop().await;
    stack.finish().await;
}
