//! Black-box tests of `oneflow-audio`: hostile bytes, external decoders and real encoders,
//! in one test binary to keep link time down.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions fail loudly on purpose"
)]

mod external;
mod fixtures;
mod robustness;
