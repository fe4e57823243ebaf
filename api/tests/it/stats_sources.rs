//! The rollups held to the rows: the same stored events, one API counting
//! rows (`--stats-source raw`) and one reading the rollups, and every
//! statistics answer compared as JSON over many ranges (random ones with
//! sub-second and sub-microsecond bounds, hour- and day-aligned ones, ones
//! inside an hour, the 31-day cap), each with and without a type filter.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use eventpulse_api::config::Layer;
use eventpulse_api::stats_source::StatsSource;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::{at, Api, Stack, STORE_EVENTS};

const TYPES: [&str; 5] = [
    "login",
    "logout",
    "page_view",
    "button_click",
    "form_submit",
];
/// The seeded events span three days and three hours from here.
const START: &str = "2026-11-20T00:00:00Z";
const SPAN_HOURS: i64 = 75;
const SEED: u64 = 0x5eed_2026;

/// A small deterministic generator (splitmix64): the same ranges every run.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A whole number in `0..n`.
    fn below(&mut self, n: i64) -> i64 {
        (self.next() % n as u64) as i64
    }
}

/// The seeded events, as the columns `eventpulse_store_events` takes.
#[derive(Default)]
struct Batch {
    ids: Vec<Uuid>,
    kinds: Vec<&'static str>,
    users: Vec<String>,
    times: Vec<DateTime<Utc>>,
    payloads: Vec<String>,
    partitions: Vec<i32>,
    offsets: Vec<i64>,
}

impl Batch {
    fn push(&mut self, id: Uuid, at: DateTime<Utc>, dice: &mut Dice) {
        // A few busy users and a tail, so top users has ties and a cut.
        let user = format!("u{}", dice.below(4) * dice.below(4) + dice.below(3));
        let devices = [Some("Chrome"), Some("Firefox"), Some("Safari"), None];
        let mut payload = json!({ "userId": user });
        if let Some(device) = devices[dice.below(4) as usize] {
            payload["device"] = json!(device);
        }
        self.ids.push(id);
        self.kinds.push(TYPES[dice.below(5) as usize]);
        self.users.push(user);
        self.times.push(at);
        self.payloads.push(payload.to_string());
        // Several partitions per user: rollup rows of one user, hour and
        // type in several shards, which readers must add up.
        self.partitions.push(dice.below(4) as i32);
        self.offsets.push(self.offsets.len() as i64);
    }

    async fn store(&self, pool: &sqlx::PgPool) -> i64 {
        sqlx::query_scalar(STORE_EVENTS)
            .bind(&self.ids)
            .bind(&self.kinds)
            .bind(&self.users)
            .bind(&self.times)
            .bind(&self.payloads)
            .bind(&self.partitions)
            .bind(&self.offsets)
            .fetch_one(pool)
            .await
            .expect("store events")
    }
}

/// Random times over the span (whole microseconds, as Postgres keeps them),
/// plus events exactly on hour and day boundaries and a microsecond before.
fn seeded(dice: &mut Dice) -> Batch {
    let start = at(START);
    let mut batch = Batch::default();
    for _ in 0..3000 {
        let offset = Duration::microseconds(dice.below(SPAN_HOURS * 3_600_000_000));
        batch.push(Uuid::new_v4(), start + offset, dice);
    }
    for hour in [0, 1, 13, 23, 24, 47, 48, 49, 72] {
        let boundary = start + Duration::hours(hour);
        for at in [boundary, boundary - Duration::microseconds(1)] {
            batch.push(Uuid::new_v4(), at, dice);
            batch.push(Uuid::new_v4(), at, dice);
        }
    }
    batch
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rollups_answer_exactly_as_the_rows() {
    let stack = Stack::new(1).await;
    let mut dice = Dice(SEED);
    let batch = seeded(&mut dice);
    let stored = batch.store(&stack.pool).await;
    assert_eq!(stored, batch.ids.len() as i64);
    store_duplicates(&stack, &batch, &mut dice).await;
    assert_rollups_add_up(&stack, stored).await;

    let raw = start(&stack, StatsSource::Raw).await;
    let rollups = start(&stack, StatsSource::Rollups).await;
    let mut seen_events = 0;
    for (from, to) in ranges(&mut dice) {
        for event_type in [None, Some(TYPES[dice.below(5) as usize])] {
            let limit = 1 + dice.below(15);
            for path in paths(from, to, event_type, limit) {
                let (status, expected) = raw.get(&path).await;
                assert_eq!(status, StatusCode::OK, "{path}: {expected}");
                let got = rollups.get(&path).await;
                assert_eq!(got, (status, expected.clone()), "{path}");
                seen_events += expected["total_events"].as_i64().unwrap_or(0);
            }
        }
    }
    // The whole-data ranges alone count every event three times (three metrics routes).
    assert!(
        seen_events > 3 * 3000,
        "the ranges cover the events: {seen_events}"
    );

    assert_the_rollups_are_read(&stack, &raw, &rollups).await;
    raw.stop().await;
    rollups.stop().await;
    stack.finish().await;
}

/// A second copy of an id, at another time, in a batch of its own and in a
/// batch with a fresh event: never stored, never counted.
async fn store_duplicates(stack: &Stack, batch: &Batch, dice: &mut Dice) {
    let twice = batch.ids[7];
    let mut again = Batch::default();
    again.push(twice, at(START) + Duration::hours(30), dice);
    assert_eq!(
        again.store(&stack.pool).await,
        0,
        "a stored id is not stored again"
    );
    let fresh = Uuid::new_v4();
    let mut mixed = Batch::default();
    mixed.push(fresh, at(START) + Duration::hours(2), dice);
    mixed.push(twice, at(START) + Duration::hours(50), dice);
    mixed.push(fresh, at(START) + Duration::hours(60), dice);
    assert_eq!(
        mixed.store(&stack.pool).await,
        1,
        "only the fresh one, once"
    );
    let copies: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE event_id = ANY($1)")
        .bind([twice, fresh])
        .fetch_one(&stack.pool)
        .await
        .expect("count copies");
    assert_eq!(copies, 2);
}

async fn assert_rollups_add_up(stack: &Stack, stored: i64) {
    let (rows, hourly, user_hourly, user_daily): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM events), \
                (SELECT sum(events)::bigint FROM rollup_hourly), \
                (SELECT sum(events)::bigint FROM rollup_user_hourly), \
                (SELECT sum(events)::bigint FROM rollup_user_daily)",
    )
    .fetch_one(&stack.pool)
    .await
    .expect("sum the rollups");
    assert_eq!(rows, stored + 1, "the seeded events and one fresh one");
    assert_eq!((hourly, user_hourly, user_daily), (rows, rows, rows));
}

async fn start(stack: &Stack, source: StatsSource) -> Api {
    stack
        .start_api(Layer {
            stats_source: Some(source),
            ..stack.layer()
        })
        .await
}

/// Ranges of every kind the split treats differently, plus random ones.
fn ranges(dice: &mut Dice) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let start = at(START);
    let hour = |h: i64| start + Duration::hours(h);
    let mut ranges = vec![
        // Day-aligned, hour-aligned, whole data set, all of the cap.
        (hour(0), hour(48)),
        (hour(24), hour(48)),
        (hour(-24), hour(96)),
        (hour(13), hour(47)),
        (hour(1), hour(2)),
        (hour(-600), hour(144)),
        // Inside one hour; across one boundary without a whole hour.
        (
            hour(13) + Duration::minutes(5),
            hour(13) + Duration::minutes(55),
        ),
        (
            hour(23) + Duration::minutes(30),
            hour(24) + Duration::minutes(30),
        ),
        (
            hour(24) - Duration::microseconds(1),
            hour(24) + Duration::microseconds(1),
        ),
        // Nanoseconds that Postgres rounds, around a boundary event.
        (
            hour(23) + Duration::nanoseconds(-500),
            hour(49) + Duration::nanoseconds(500),
        ),
        // A leap second: chrono keeps it in hour 22, Postgres reads 23:00:00.5.
        (at("2026-11-20T22:59:60.5Z"), hour(25)),
        // 31 days to the microsecond, with sub-second ends.
        (
            hour(-500) + Duration::microseconds(123_457),
            hour(-500) + Duration::microseconds(123_457) + Duration::days(31),
        ),
    ];
    for _ in 0..40 {
        let from =
            start - Duration::hours(6) + Duration::nanoseconds(dice.below(90 * 3_600_000_000_000));
        let longest = [
            Duration::minutes(50),
            Duration::hours(6),
            Duration::days(3),
            Duration::days(31),
        ][dice.below(4) as usize];
        let length =
            Duration::nanoseconds(1 + dice.below(longest.num_nanoseconds().expect("small")));
        ranges.push((from, from + length));
    }
    ranges
}

/// Every route whose answer the rollups give, for one range and filter.
fn paths(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    event_type: Option<&str>,
    limit: i64,
) -> Vec<String> {
    let time = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::AutoSi, true);
    let mut query = format!("from={}&to={}", time(from), time(to));
    if let Some(event_type) = event_type {
        query.push_str(&format!("&event_type={event_type}"));
    }
    vec![
        format!("/stats/hourly?{query}"),
        format!("/stats/top-users?{query}&limit={limit}"),
        format!("/events/metrics?{query}&group_by=hourly"),
        format!("/events/metrics?{query}&group_by=daily"),
        format!("/events/metrics?{query}&group_by=device"),
    ]
}

/// The comparison would pass vacuously if both APIs counted rows: change
/// one rollup row and only the rollups' answer moves.
async fn assert_the_rollups_are_read(stack: &Stack, raw: &Api, rollups: &Api) {
    sqlx::query(
        "UPDATE rollup_hourly SET events = events + 1000 \
         WHERE (hour, event_type, shard) = (SELECT hour, event_type, shard FROM rollup_hourly \
                                            WHERE hour = $1 LIMIT 1)",
    )
    .bind(at(START) + Duration::hours(5))
    .execute(&stack.pool)
    .await
    .expect("change one rollup row");
    let path = format!("/stats/hourly?from={START}&to=2026-11-21T00:00:00Z");
    let total = |answer: (StatusCode, Value)| answer.1["total"].as_i64().expect("a total");
    let counted = total(raw.get(&path).await);
    assert_eq!(total(rollups.get(&path).await), counted + 1000);
}
