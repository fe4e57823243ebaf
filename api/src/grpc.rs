//! gRPC ingestion: `eventpulse.v1.EventService` (`Push`, `PushBatch`), the
//! standard health service and server reflection, on their own listener
//! (`--grpc-addr`), so `grpcurl` and load balancers work without the .proto.
//!
//! - [`service`]: the two calls, on [`crate::ingest::accept`]: the same
//!   validation, all or nothing, answered once the broker acknowledged.
//! - [`status`]: each [`crate::error::ApiError`] as the gRPC status code
//!   matching its HTTP one, with per-event reasons in the details.
//! - [`auth`]: the `x-api-key` metadata entry, checked before the request
//!   is decoded.
//!
//! The health service reports `eventpulse.v1.EventService` SERVING while
//! ingestion is enabled, NOT_SERVING once shutdown begins or when no API key
//! is configured.

mod auth;
mod service;
mod status;

use std::future::Future;

use eventpulse_events::grpc::v1::event_service_server::EventServiceServer;
use eventpulse_events::grpc::v1::FILE_DESCRIPTOR_SET;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Server;
use tonic_health::ServingStatus;

use crate::state::AppState;

/// The fully qualified name health checks ask about.
pub const SERVICE_NAME: &str = "eventpulse.v1.EventService";

/// Serves gRPC on `listener` until `shutdown` completes; calls in flight
/// then finish (ingestion ones wait for their acknowledgements).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (health, health_service) = tonic_health::server::health_reporter();
    let serving = if state.ingestor.is_some() {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    health.set_service_status(SERVICE_NAME, serving).await;
    // v1alpha too: older grpcurl and Postman still ask it.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let (reflection, reflection_v1alpha) =
        (reflection().build_v1()?, reflection().build_v1alpha()?);
    // The HTTP body limit; tonic refuses a larger message before buffering
    // it, with OUT_OF_RANGE, which `status` turns into RESOURCE_EXHAUSTED.
    let events = EventServiceServer::new(service::Events::new(state.clone()))
        .max_decoding_message_size(state.max_body_bytes);
    let events =
        tonic::service::interceptor::InterceptedService::new(events, auth::ApiKeyCheck::new(state));
    let stopping = async move {
        shutdown.await;
        health
            .set_service_status(SERVICE_NAME, ServingStatus::NotServing)
            .await;
    };
    Server::builder()
        .layer(tower::util::MapResponseLayer::new(
            status::too_large_as_exhausted,
        ))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(events)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), stopping)
        .await
        .map_err(|e| anyhow::anyhow!("gRPC server failed: {e}"))
}
