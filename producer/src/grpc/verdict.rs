//! What a refused `PushBatch` means for its records, decided from the status
//! alone, and how long to keep retrying the transient refusals. No I/O: the
//! lane ([`super::lane`]) acts on the [`Verdict`].
//!
//! The API's contract (`proto/eventpulse/v1/events.proto`): a batch is all
//! or nothing. INVALID_ARGUMENT with a `google.rpc.BadRequest` names each
//! invalid record as `events[i]`, and nothing was produced, so the others
//! go again; RESOURCE_EXHAUSTED means the request was too large; UNAVAILABLE
//! that the broker did not acknowledge in time, which is safe to retry (the
//! consumer drops copies by event id).

use std::time::{Duration, Instant};

use tonic::{Code, Status};
use tonic_types::StatusExt as _;

/// What to do with a batch the API did not accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// These records (sorted indexes into the batch) are invalid: they are
    /// refused, the rest is sent again.
    RefuseSome(Vec<usize>),
    /// The batch is too large, or longer than the API's `--max-batch-events`:
    /// send each half.
    Halve,
    /// A lone record the API will not take whole (too large): refused.
    RefuseOne,
    /// Transient (UNAVAILABLE, or the call timed out): the same batch again,
    /// after a pause.
    Retry,
    /// Anything else (UNAUTHENTICATED, INTERNAL, ...): the records failed.
    Fail,
}

/// The verdict on a batch of `len` records the API answered with `status`.
pub fn judge(status: &Status, len: usize) -> Verdict {
    match status.code() {
        Code::InvalidArgument => match invalid_records(status, len) {
            Some(indexes) => Verdict::RefuseSome(indexes),
            // No per-record reasons: the batch as a whole (empty, too long).
            None if len > 1 => Verdict::Halve,
            None => Verdict::Fail,
        },
        Code::ResourceExhausted | Code::OutOfRange if len > 1 => Verdict::Halve,
        Code::ResourceExhausted | Code::OutOfRange => Verdict::RefuseOne,
        // Cancelled and DeadlineExceeded are what a call timing out on this
        // side looks like; the batch may or may not have been produced.
        Code::Unavailable | Code::Cancelled | Code::DeadlineExceeded => Verdict::Retry,
        _ => Verdict::Fail,
    }
}

/// The indexes named by the BadRequest's `events[i]` violations, if every
/// violation names a record of this batch (and there is at least one).
fn invalid_records(status: &Status, len: usize) -> Option<Vec<usize>> {
    let details = status.get_error_details();
    let violations = &details.bad_request()?.field_violations;
    let mut indexes = violations
        .iter()
        .map(|v| record_index(&v.field).filter(|i| *i < len))
        .collect::<Option<Vec<usize>>>()?;
    indexes.sort_unstable();
    indexes.dedup();
    (!indexes.is_empty()).then_some(indexes)
}

/// `events[12]` -> 12.
fn record_index(field: &str) -> Option<usize> {
    field
        .strip_prefix("events[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Backoff for one batch's transient refusals: 50 ms doubling to 2 s, for
/// [`Retry::BUDGET`] in all from the first refusal.
#[derive(Debug, Clone)]
pub struct Retry {
    since: Instant,
    next: Duration,
}

impl Retry {
    /// Long enough to ride out a broker restart or the API's own restart;
    /// short enough that a run against a dead API ends.
    pub const BUDGET: Duration = Duration::from_secs(60);
    const FIRST: Duration = Duration::from_millis(50);
    const MOST: Duration = Duration::from_secs(2);

    pub fn start(now: Instant) -> Self {
        Self {
            since: now,
            next: Self::FIRST,
        }
    }

    /// How long to wait before the next try, or `None` once the budget is spent.
    pub fn next_delay(&mut self, now: Instant) -> Option<Duration> {
        let left = Self::BUDGET.checked_sub(now.saturating_duration_since(self.since))?;
        if left.is_zero() {
            return None;
        }
        let delay = self.next.min(left);
        self.next = (self.next * 2).min(Self::MOST);
        Some(delay)
    }
}

#[cfg(test)]
mod tests {
    use tonic_types::{ErrorDetails, FieldViolation};

    use super::*;

    fn invalid(fields: &[&str]) -> Status {
        let violations: Vec<FieldViolation> = fields
            .iter()
            .map(|f| FieldViolation::new(*f, "bad_ip: not an address"))
            .collect();
        Status::with_error_details(
            Code::InvalidArgument,
            "invalid events",
            ErrorDetails::with_bad_request(violations),
        )
    }

    #[test]
    fn named_invalid_records_are_refused_and_the_rest_goes_again() {
        let status = invalid(&["events[4]", "events[0]", "events[4]"]);
        assert_eq!(judge(&status, 5), Verdict::RefuseSome(vec![0, 4]));
    }

    #[test]
    fn violations_that_do_not_name_a_record_of_the_batch_are_not_trusted() {
        assert_eq!(judge(&invalid(&["events[5]"]), 5), Verdict::Halve);
        assert_eq!(judge(&invalid(&["payload"]), 5), Verdict::Halve);
        assert_eq!(judge(&invalid(&["events[1]"]), 1), Verdict::Fail);
        let bare = Status::invalid_argument("the batch has 600 events, the limit is 500");
        assert_eq!(judge(&bare, 600), Verdict::Halve);
        assert_eq!(judge(&bare, 1), Verdict::Fail);
    }

    #[test]
    fn too_large_halves_a_batch_and_refuses_a_lone_record() {
        let status = Status::resource_exhausted("larger than 1048576 bytes");
        assert_eq!(judge(&status, 2), Verdict::Halve);
        assert_eq!(judge(&status, 1), Verdict::RefuseOne);
    }

    #[test]
    fn transient_codes_retry_and_the_rest_fail() {
        for code in [Code::Unavailable, Code::Cancelled, Code::DeadlineExceeded] {
            assert_eq!(judge(&Status::new(code, ""), 3), Verdict::Retry, "{code:?}");
        }
        for code in [Code::Unauthenticated, Code::Internal, Code::Unimplemented] {
            assert_eq!(judge(&Status::new(code, ""), 3), Verdict::Fail, "{code:?}");
        }
    }

    #[test]
    fn retries_back_off_and_stop_after_the_budget() {
        let start = Instant::now();
        let mut retry = Retry::start(start);
        let delays: Vec<u128> = (0..8)
            .map(|_| retry.next_delay(start).unwrap().as_millis())
            .collect();
        assert_eq!(delays, [50, 100, 200, 400, 800, 1600, 2000, 2000]);
        let near_end = start + Retry::BUDGET - Duration::from_millis(300);
        assert_eq!(retry.next_delay(near_end), Some(Duration::from_millis(300)));
        assert_eq!(retry.next_delay(start + Retry::BUDGET), None);
        assert_eq!(retry.next_delay(start + Retry::BUDGET * 2), None);
    }
}
