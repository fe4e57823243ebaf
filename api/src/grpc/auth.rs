//! The API key of a gRPC call: metadata entry `x-api-key`, checked against
//! the configured keys (constant-time) before the request is decoded, like
//! the HTTP routes' `X-API-Key` header.

use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::auth::API_KEY_HEADER;
use crate::error::ApiError;
use crate::grpc::status::finish;
use crate::state::AppState;

#[derive(Clone)]
pub struct ApiKeyCheck {
    state: AppState,
}

impl ApiKeyCheck {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

impl Interceptor for ApiKeyCheck {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let refusal = if self.state.api_keys.is_empty() {
            ApiError::IngestionDisabled
        } else {
            let presented = request.metadata().get(API_KEY_HEADER).map(|v| v.as_bytes());
            match presented {
                Some(key) if self.state.api_keys.accepts(key) => return Ok(request),
                _ => ApiError::Unauthorized,
            }
        };
        // The method is not known before decoding: counted under "*".
        finish(&self.state, "*", std::time::Instant::now(), Err(refusal))
    }
}
