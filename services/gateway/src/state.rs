//! Shared state of the gateway's handlers.
use crate::audio_cache::AudioCache;
use crate::clients::Clients;
use crate::models::ModelDirectory;
use crate::principal::PrincipalCache;
use crate::settle::Settler;

/// Everything a handler needs, cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    /// gRPC clients.
    pub clients: Clients,
    /// Credential cache.
    pub principals: PrincipalCache,
    /// Model directory.
    pub models: ModelDirectory,
    /// Background settlement.
    pub settler: Settler,
    /// The speech cache, when `[audio_cache]` names a store.
    pub audio_cache: Option<AudioCache>,
    /// Proxies in front of the gateway whose `X-Forwarded-For` entries are trusted.
    pub trusted_proxy_hops: usize,
}
