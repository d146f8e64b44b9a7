//! Integration tests of the provider adapters against fixtures written from
//! each provider's published documentation (`tests/fixtures/`).
//!
//! One test binary with modules keeps link time down on small machines.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions fail loudly on purpose"
)]

mod anthropic;
mod errors;
mod fixture;
mod gemini;
mod passthrough;
mod shape;
mod streaming;
