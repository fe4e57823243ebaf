//! `eventpulse.v1.EventService`: `Push` and `PushBatch`, the gRPC forms of
//! `POST /events` and `POST /events/batch`, on the same
//! [`accept`](crate::ingest::accept). An event sent as fields is turned into
//! the JSON it stands for first, so Kafka carries the same bytes whichever
//! way an event came in; one sent as `json` goes to Kafka byte for byte.

use std::borrow::Cow;
use std::time::Instant;

use eventpulse_events::grpc::fields_to_json;
use eventpulse_events::grpc::v1::event::Form;
use eventpulse_events::grpc::v1::event_service_server::EventService;
use eventpulse_events::grpc::v1::{Ack, BatchAck, Event, EventBatch};
use tonic::{Request, Response, Status};

use crate::error::ApiError;
use crate::grpc::status::finish;
use crate::ingest::{accept, check_batch_len};
use crate::state::AppState;

pub struct Events {
    state: AppState,
}

impl Events {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }

    async fn push_all(&self, events: &[Event]) -> Result<Vec<String>, ApiError> {
        let bodies: Vec<Cow<'_, [u8]>> = events.iter().map(json_of).collect();
        let bodies: Vec<&[u8]> = bodies.iter().map(AsRef::as_ref).collect();
        let accepted = accept(&self.state, &bodies).await?;
        Ok(accepted.iter().map(ToString::to_string).collect())
    }
}

/// The JSON an event stands for (borrowed when sent as JSON: no copy per
/// event); an event with neither form is an empty body, which validation
/// refuses as malformed JSON.
fn json_of(event: &Event) -> Cow<'_, [u8]> {
    match &event.form {
        Some(Form::Json(bytes)) => Cow::Borrowed(bytes),
        Some(Form::Fields(fields)) => Cow::Owned(fields_to_json(fields)),
        None => Cow::Borrowed(&[]),
    }
}

#[tonic::async_trait]
impl EventService for Events {
    async fn push(&self, request: Request<Event>) -> Result<Response<Ack>, Status> {
        let started = Instant::now();
        let event = request.into_inner();
        let result = self
            .push_all(std::slice::from_ref(&event))
            .await
            .map(|mut ids| Ack {
                event_id: ids.pop().unwrap_or_default(),
            });
        finish(&self.state, "Push", started, result).map(Response::new)
    }

    async fn push_batch(&self, request: Request<EventBatch>) -> Result<Response<BatchAck>, Status> {
        let started = Instant::now();
        let batch = request.into_inner();
        let result = match check_batch_len(batch.events.len(), self.state.max_batch_events) {
            Ok(()) => self.push_all(&batch.events).await,
            Err(error) => Err(error),
        };
        let result = result.map(|event_ids| BatchAck { event_ids });
        finish(&self.state, "PushBatch", started, result).map(Response::new)
    }
}
