//! Shutdown is passed in as a future (a signal in `main`, anything in tests)
//! and turned into a [`ShutdownFlag`] that the pipeline and the HTTP server
//! both wait on. Both pieces are shared with the API and live in
//! `eventpulse_service::shutdown`.

pub use eventpulse_service::shutdown::{signal, ShutdownFlag};
