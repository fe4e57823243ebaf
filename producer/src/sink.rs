//! Where records go: the [`Sink`] trait, and [`WriterSink`] for JSON lines on
//! stdout or in a file (`--dry-run`, `--output`). The Kafka sink is in
//! [`crate::kafka`], the gRPC one (through eventpulse-api) in [`crate::grpc`].
//!
//! The driver only sees this trait, so a dry run exercises the same loop,
//! pacing and summary as a real run; that is what lets unit tests check the
//! summary against the bytes actually emitted.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use crate::{ProducerError, StopSignal};

/// Delivery outcomes so far. For a writer, every written line counts as acked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deliveries {
    pub acked: u64,
    /// Not delivered: the broker or the API could not take them (an error).
    pub failed: u64,
    /// Refused by the API as invalid (or too large to send): the records the
    /// producer broke on purpose, so not an error. Always 0 for Kafka and
    /// writers, which take every record as it is.
    pub refused: u64,
}

impl Deliveries {
    /// Records whose fate is known.
    pub fn settled(&self) -> u64 {
        self.acked + self.failed + self.refused
    }
}

/// Whether [`Sink::send`] took the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Taken (for Kafka: queued; it may still fail, which [`Deliveries`] counts).
    Taken,
    /// Not taken, and the run should end: a stop was requested while the sink
    /// was full, or the reader of stdout went away.
    Closed,
}

pub trait Sink {
    /// Hands over one record, waiting for room if the sink is full.
    fn send(&mut self, key: &str, payload: &[u8], stop: &StopSignal)
        -> Result<Sent, ProducerError>;

    /// Outcomes of the records handed over so far.
    fn deliveries(&self) -> Deliveries;

    /// Waits until every record handed over is acknowledged or failed (or,
    /// for Kafka, until a second stop request gives up on the rest, which then
    /// count as failed). Calls `on_wait` while waiting, for progress display.
    fn finish(
        &mut self,
        stop: &StopSignal,
        on_wait: &mut dyn FnMut(Deliveries),
    ) -> Result<Deliveries, ProducerError>;
}

/// Writes each record's value as one line; keys are not written (the user id
/// is inside the JSON). Invalid records are written as they would be sent,
/// so a `not_utf8` line is not UTF-8; none of them contains a newline.
pub struct WriterSink<W: Write> {
    writer: W,
    target: String,
    written: u64,
}

impl WriterSink<BufWriter<Box<dyn Write>>> {
    pub fn stdout() -> Self {
        WriterSink::new(BufWriter::new(Box::new(io::stdout())), "stdout")
    }

    pub fn create(path: &Path) -> Result<Self, ProducerError> {
        let target = path.display().to_string();
        let file = File::create(path).map_err(|source| ProducerError::Output {
            target: target.clone(),
            source,
        })?;
        Ok(WriterSink::new(BufWriter::new(Box::new(file)), target))
    }
}

impl<W: Write> WriterSink<W> {
    pub fn new(writer: W, target: impl Into<String>) -> Self {
        Self {
            writer,
            target: target.into(),
            written: 0,
        }
    }

    pub fn into_inner(self) -> W {
        self.writer
    }

    fn failed(&self, source: io::Error) -> ProducerError {
        ProducerError::Output {
            target: self.target.clone(),
            source,
        }
    }
}

impl<W: Write> Sink for WriterSink<W> {
    fn send(
        &mut self,
        _key: &str,
        payload: &[u8],
        _stop: &StopSignal,
    ) -> Result<Sent, ProducerError> {
        let written = self
            .writer
            .write_all(payload)
            .and_then(|()| self.writer.write_all(b"\n"));
        match written {
            Ok(()) => {
                self.written += 1;
                Ok(Sent::Taken)
            }
            // `eventpulse-producer --dry-run | head` should end quietly, as
            // programs killed by SIGPIPE do.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(Sent::Closed),
            Err(e) => Err(self.failed(e)),
        }
    }

    fn deliveries(&self) -> Deliveries {
        Deliveries {
            acked: self.written,
            ..Deliveries::default()
        }
    }

    fn finish(
        &mut self,
        _stop: &StopSignal,
        on_wait: &mut dyn FnMut(Deliveries),
    ) -> Result<Deliveries, ProducerError> {
        match self.writer.flush() {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
            Err(e) => return Err(self.failed(e)),
        }
        on_wait(self.deliveries());
        Ok(self.deliveries())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct ClosedPipe;

    impl Write for ClosedPipe {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
    }

    #[test]
    fn writes_one_line_per_record() {
        let stop = StopSignal::default();
        let mut sink = WriterSink::new(Vec::new(), "memory");
        assert_eq!(sink.send("k", b"{\"a\":1}", &stop).unwrap(), Sent::Taken);
        assert_eq!(sink.send("k", b"{}", &stop).unwrap(), Sent::Taken);
        let done = sink.finish(&stop, &mut |_| {}).unwrap();
        assert_eq!(
            done,
            Deliveries {
                acked: 2,
                ..Deliveries::default()
            }
        );
        assert_eq!(sink.into_inner(), b"{\"a\":1}\n{}\n");
    }

    #[test]
    fn a_closed_pipe_ends_the_run_quietly() {
        let stop = StopSignal::default();
        let mut sink = WriterSink::new(ClosedPipe, "stdout");
        assert_eq!(sink.send("k", b"{}", &stop).unwrap(), Sent::Closed);
        assert!(sink.finish(&stop, &mut |_| {}).is_ok());
    }
}
