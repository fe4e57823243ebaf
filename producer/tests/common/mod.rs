//! What both integration tests compare against: the records a seed makes,
//! kept by a sink instead of sent anywhere.

use eventpulse_producer::sink::{Deliveries, Sent, Sink};
use eventpulse_producer::{ProducerError, StopSignal};

/// (key, payload) in the order made.
pub type Records = Vec<(String, Vec<u8>)>;

/// A sink that keeps what it is given.
#[derive(Default)]
pub struct Capture(pub Records);

impl Sink for Capture {
    fn send(&mut self, key: &str, payload: &[u8], _: &StopSignal) -> Result<Sent, ProducerError> {
        self.0.push((key.to_string(), payload.to_vec()));
        Ok(Sent::Taken)
    }
    fn deliveries(&self) -> Deliveries {
        Deliveries {
            acked: self.0.len() as u64,
            ..Deliveries::default()
        }
    }
    fn finish(
        &mut self,
        _: &StopSignal,
        _: &mut dyn FnMut(Deliveries),
    ) -> Result<Deliveries, ProducerError> {
        Ok(self.deliveries())
    }
}
