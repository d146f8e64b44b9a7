//! Revocation push: every change that must stop a credential at once (a key
//! revoked, a user disabled, a rotation with no grace) is published here and
//! streamed to every connected gateway, which drops its cached principals. On
//! PostgreSQL the event also goes through `NOTIFY`, so gateways connected to
//! other auth replicas hear it too.
use std::time::Duration;

use oneflow_proto::auth::v1 as pb;
use serde::{Deserialize, Serialize};
use sqlx::AnyPool;
use tokio::sync::broadcast;

const CHANNEL: &str = "oneflow_revocations";

/// What was revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Revoked {
    /// One API key.
    Key(String),
    /// Every credential of a user.
    User(String),
}

impl Revoked {
    /// The wire form for the gateway stream.
    pub fn to_proto(&self, reason: &str) -> pb::RevocationEvent {
        let target = match self {
            Revoked::Key(id) => pb::revocation_event::Target::KeyId(id.clone()),
            Revoked::User(id) => pb::revocation_event::Target::UserId(id.clone()),
        };
        pb::RevocationEvent {
            target: Some(target),
            reason: reason.to_owned(),
        }
    }
}

/// The local fan-out plus, on PostgreSQL, the cross-replica channel.
#[derive(Debug, Clone)]
pub struct Revocations {
    tx: broadcast::Sender<Revoked>,
    notify: Option<AnyPool>,
}

impl Revocations {
    /// A hub; `notify` is the PostgreSQL pool to `NOTIFY` through, if any.
    pub fn new(notify: Option<AnyPool>) -> Self {
        let (tx, _) = broadcast::channel(1024);
        Self { tx, notify }
    }

    /// Subscribes to revocations.
    pub fn subscribe(&self) -> broadcast::Receiver<Revoked> {
        self.tx.subscribe()
    }

    /// Publishes to local subscribers at once, and to other replicas.
    pub async fn publish(&self, event: Revoked) {
        metrics::counter!("oneflow_auth_revocations_total").increment(1);
        let _ = self.tx.send(event.clone());
        if let Some(pool) = &self.notify {
            let payload = serde_json::to_string(&event).unwrap_or_default();
            if let Err(e) = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(payload)
                .execute(pool)
                .await
            {
                tracing::error!(error = %e, "revocation NOTIFY failed; other replicas rely on cache expiry");
            }
        }
    }

    /// Relays `NOTIFY`s from other replicas to local subscribers, forever
    /// (reconnecting after errors).
    pub async fn listen_postgres(self, url: String) {
        loop {
            match sqlx::postgres::PgListener::connect(&url).await {
                Ok(mut listener) => {
                    if listener.listen(CHANNEL).await.is_ok() {
                        loop {
                            match listener.recv().await {
                                Ok(n) => {
                                    if let Ok(event) = serde_json::from_str::<Revoked>(n.payload()) {
                                        let _ = self.tx.send(event);
                                    }
                                }
                                Err(e) => {
                                    tracing::warn!(error = %e, "revocation listener lost its connection");
                                    break;
                                }
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "revocation listener cannot connect"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}
