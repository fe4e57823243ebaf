//! The start-up check of `--via grpc://...`: connect, and ask the API's
//! standard health service whether `eventpulse.v1.EventService` is serving,
//! all within `--connect-timeout`. A wrong address, something else on the
//! port, or an API that does not ingest (no `--api-keys`) then fails in one
//! line naming the address and the flag, before any record is made.

use std::error::Error;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use super::counts::describe;
use crate::via::GrpcEndpoint;
use crate::ProducerError;

/// The service the health check asks about (the API's `grpc::SERVICE_NAME`).
const SERVICE: &str = "eventpulse.v1.EventService";

/// Longest one call may take. The API answers within its produce timeout
/// (10 s by default) even when the broker does not; past this, the call is
/// cancelled here and retried like UNAVAILABLE.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A channel to an API whose EventService is serving.
pub async fn check(endpoint: &GrpcEndpoint, timeout: Duration) -> Result<Channel, ProducerError> {
    let unreachable = |reason: String| ProducerError::ApiUnreachable {
        endpoint: endpoint.to_string(),
        timeout,
        reason,
    };
    let settings = Endpoint::from_shared(endpoint.uri())
        .map_err(|e| unreachable(chain(&e)))?
        .connect_timeout(timeout)
        .timeout(CALL_TIMEOUT)
        .tcp_nodelay(true);
    let answer = tokio::time::timeout(timeout, async {
        let channel = settings.connect().await.map_err(|e| chain(&e))?;
        let request = HealthCheckRequest {
            service: SERVICE.into(),
        };
        let status = HealthClient::new(channel.clone())
            .check(request)
            .await
            .map_err(|status| format!("health check: {}", describe(&status)))?
            .into_inner()
            .status;
        Ok::<_, String>((channel, status))
    })
    .await
    .map_err(|_| unreachable("no answer".into()))?;
    let (channel, status) = answer.map_err(unreachable)?;
    match ServingStatus::try_from(status) {
        Ok(ServingStatus::Serving) => Ok(channel),
        other => Err(ProducerError::ApiNotServing {
            endpoint: endpoint.to_string(),
            status: other.map_or_else(|_| format!("status {status}"), |s| s.as_str_name().into()),
        }),
    }
}

/// The error and its sources on one line: tonic's own message is only
/// "transport error", the reason is further down.
fn chain(error: &(dyn Error + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ").replace('\n', " ")
}
