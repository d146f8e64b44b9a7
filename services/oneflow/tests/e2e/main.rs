//! Black-box tests of the real binaries: the one-process mode, the four
//! services as separate processes on PostgreSQL + Redis, and graceful shutdown.

mod client;
mod distributed;
mod one_process;
mod shutdown;
