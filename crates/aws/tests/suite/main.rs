//! Integration tests of `oneflow-aws` through its public API, in one test binary to keep
//! link time down. Fixtures live in `tests/fixtures/`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: failing loudly is the point"
)]

mod bedrock_request;
mod bedrock_response;
mod bedrock_stream;
mod eventstream;
mod fixture;
mod polly;
mod sigv4;
mod transcribe;
