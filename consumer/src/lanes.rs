//! Flush lanes: the batches of disjoint sets of partitions, each made durable
//! by its own [`Flusher`] on its own Postgres connection, so that one lane's
//! transaction runs while another's batch fills or flushes. A partition
//! always belongs to the same lane (`partition % lanes`), and a lane has at
//! most one flush in flight, so each partition's offsets are still written
//! in order, one batch after the other; lanes never wait for each other.
//! Rollup rows carry the Kafka partition (`shard`), so two lanes never
//! update the same row either.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use tokio::time::Instant;
use uuid::Uuid;

use crate::batch::Batch;
use crate::flush::{FlushReport, Flusher};
use crate::position::{Generation, PartitionOffset};
use crate::retry::Interrupted;
use crate::shutdown::ShutdownFlag;

pub type Flushing =
    Pin<Box<dyn Future<Output = (Flusher, Result<FlushReport, Interrupted>)> + Send>>;

/// A batch being made durable, and what it will let the commit stage advance.
pub struct InFlight {
    future: Flushing,
    pub progress: Vec<(Generation, PartitionOffset)>,
    bytes: usize,
}

enum FlushStage {
    Idle(Box<Flusher>),
    Busy(InFlight),
}

pub struct Lane {
    pub batch: Batch,
    /// When the filling batch is due by linger.
    pub deadline: Option<Instant>,
    /// `None` only while a flush is being handed its flusher.
    flush: Option<FlushStage>,
    /// A new database identity for Redis marks, applied when idle.
    new_instance: Option<Uuid>,
    /// Ids of this lane's durable batches whose Kafka commit was made, for
    /// its next flush to confirm in Redis before it claims. Owned by the lane
    /// (not shared by all lanes) because a replay lands in the partition,
    /// hence the lane, of its original: confirming in the same task as the
    /// claim orders the two, which separate Redis connections do not.
    confirmable: Vec<Uuid>,
}

impl Lane {
    pub fn new(flusher: Flusher) -> Self {
        Self {
            batch: Batch::default(),
            deadline: None,
            flush: Some(FlushStage::Idle(Box::new(flusher))),
            new_instance: None,
            confirmable: Vec::new(),
        }
    }

    pub fn is_idle(&self) -> bool {
        matches!(self.flush, Some(FlushStage::Idle(_)))
    }

    pub fn is_busy(&self) -> bool {
        matches!(self.flush, Some(FlushStage::Busy(_)))
    }

    /// Bytes held: the filling batch and the one flushing.
    pub fn bytes(&self) -> usize {
        let flushing = match &self.flush {
            Some(FlushStage::Busy(in_flight)) => in_flight.bytes,
            _ => 0,
        };
        self.batch.bytes() + flushing
    }

    /// Marks under `instance` from the next flush on.
    pub fn set_instance(&mut self, instance: Uuid) {
        // Ids stored under the old identity may be among the commits
        // Postgres lost: never mark them stored under the new one.
        self.confirmable.clear();
        self.new_instance = Some(instance);
        self.apply_new_instance();
    }

    fn apply_new_instance(&mut self) {
        if let (Some(instance), Some(FlushStage::Idle(flusher))) =
            (self.new_instance, &mut self.flush)
        {
            flusher.redis.set_instance(instance);
            self.new_instance = None;
        }
    }

    /// Whether a flush can start now: messages waiting, none in flight.
    pub fn can_start(&self) -> bool {
        self.is_idle() && !self.batch.is_empty()
    }

    /// `ids` are durable and their Kafka commit made: the next flush
    /// confirms them in Redis.
    pub fn confirm_later(&mut self, mut ids: Vec<Uuid>) {
        // A flush that was in flight when the identity changed stored them
        // under the old one: never mark them under the new one.
        if self.new_instance.is_some() {
            return;
        }
        self.confirmable.append(&mut ids);
    }

    /// Ids not confirmed yet (shutdown confirms them once Kafka has the
    /// final commit).
    pub fn take_confirmable(&mut self) -> Vec<Uuid> {
        std::mem::take(&mut self.confirmable)
    }

    /// Starts making the filling batch durable, if the lane is idle and has
    /// messages; the flush first confirms this lane's earlier batches.
    pub fn start_flush(&mut self, shutdown: &ShutdownFlag) {
        self.apply_new_instance();
        if !self.can_start() {
            return;
        }
        let confirm = std::mem::take(&mut self.confirmable);
        let Some(FlushStage::Idle(mut flusher)) = self.flush.take() else {
            unreachable!("checked idle above");
        };
        let batch = std::mem::take(&mut self.batch);
        self.deadline = None;
        let shutdown = shutdown.clone();
        let (progress, bytes) = (batch.progress(), batch.bytes());
        let future = Box::pin(async move {
            let report = flusher.flush(&batch, &confirm, &shutdown).await;
            (*flusher, report)
        });
        self.flush = Some(FlushStage::Busy(InFlight {
            future,
            progress,
            bytes,
        }));
    }

    /// The flush ended: the lane is idle again; returns what it flushed.
    pub fn flushed(&mut self, flusher: Flusher) -> InFlight {
        let Some(FlushStage::Busy(in_flight)) =
            self.flush.replace(FlushStage::Idle(Box::new(flusher)))
        else {
            unreachable!("a flush ended while none was in flight");
        };
        in_flight
    }

    /// This lane's flusher, when idle (for the last Redis confirmation).
    pub fn idle_flusher(&mut self) -> Option<&mut Flusher> {
        match &mut self.flush {
            Some(FlushStage::Idle(flusher)) => Some(flusher),
            _ => None,
        }
    }
}

/// The lane of `partition` among `lanes`.
pub fn lane_of(partition: i32, lanes: usize) -> usize {
    partition.rem_euclid(lanes as i32) as usize
}

/// Completes when any lane's flush does, with that lane's index; never, if
/// none is in flight.
pub async fn any_flushed(lanes: &mut [Lane]) -> (usize, Flusher, Result<FlushReport, Interrupted>) {
    std::future::poll_fn(|cx| {
        for (index, lane) in lanes.iter_mut().enumerate() {
            if let Some(FlushStage::Busy(in_flight)) = &mut lane.flush {
                if let Poll::Ready((flusher, report)) = in_flight.future.as_mut().poll(cx) {
                    return Poll::Ready((index, flusher, report));
                }
            }
        }
        Poll::Pending
    })
    .await
}

/// The earliest linger deadline of a lane that could start a flush now.
pub fn next_deadline(lanes: &[Lane]) -> Option<Instant> {
    lanes
        .iter()
        .filter(|lane| lane.is_idle())
        .filter_map(|lane| lane.deadline)
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_always_has_the_same_lane() {
        assert_eq!(lane_of(0, 2), 0);
        assert_eq!(lane_of(7, 2), 1);
        assert_eq!(lane_of(7, 1), 0);
        assert_eq!(lane_of(11, 3), 2);
    }
}
