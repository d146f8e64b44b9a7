//! Black-box tests of the real binaries: the one-process mode, the four
//! services as separate processes on PostgreSQL + Redis, and graceful shutdown.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: failing loudly is the point"
)]

mod audio;
mod audio_providers;
mod client;
mod distributed;
mod grpc;
mod one_process;
mod providers;
mod sdk;
mod shutdown;
mod traces;
