//! The `AuthService` gRPC server: maps requests to the store and domain errors
//! to precise statuses. Methods that belong to the auth issue's later work
//! (passwords, JWT, key management) answer `UNIMPLEMENTED` until they land.
use std::pin::Pin;
use std::time::Duration;

use futures::Stream;
use oneflow_proto::auth::v1 as pb;
use oneflow_proto::auth::v1::auth_service_server::AuthService;
use tonic::{Request, Response, Status};

use crate::domain::{Credential, Principal};
use crate::keys;
use crate::store::{AuthStore, StoreError, now_millis};

/// gRPC implementation of the auth service.
#[derive(Clone, Debug)]
pub struct AuthGrpc {
    store: AuthStore,
    cache_ttl: Duration,
}

impl AuthGrpc {
    /// A server over `store`, telling callers to cache principals for `cache_ttl`.
    pub fn new(store: AuthStore, cache_ttl: Duration) -> Self {
        Self { store, cache_ttl }
    }

    fn to_proto(&self, p: Principal) -> pb::Principal {
        pb::Principal {
            user_id: p.user_id,
            key_id: p.key_id,
            kind: pb::CredentialKind::ApiKey.into(),
            role: pb::Role::from(p.role).into(),
            scopes: p.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            expires_at_millis: p.expires_at_millis,
            limits: p.limits,
            cache_ttl_millis: u64::try_from(self.cache_ttl.as_millis()).unwrap_or(u64::MAX),
            key_prefix: p.key_prefix,
        }
    }
}

fn store_status(e: StoreError) -> Status {
    tracing::error!(error = %e, "auth store");
    match e {
        StoreError::Connect(_) | StoreError::Query(_) => Status::unavailable("auth storage unavailable"),
        StoreError::Migrate(_) | StoreError::Corrupt(_) => Status::internal("auth storage error"),
    }
}

fn not_yet(method: &str) -> Status {
    Status::unimplemented(format!("{method} is not available in this OneFlow version"))
}

type RevocationStream = Pin<Box<dyn Stream<Item = Result<pb::RevocationEvent, Status>> + Send>>;

#[tonic::async_trait]
impl AuthService for AuthGrpc {
    #[tracing::instrument(skip_all)]
    async fn validate_credential(
        &self,
        request: Request<pb::ValidateCredentialRequest>,
    ) -> Result<Response<pb::Principal>, Status> {
        let Credential(raw) = Credential::try_from(request.into_inner())?;
        if !keys::looks_like_key(&raw) {
            metrics::counter!("oneflow_auth_validations_total", "result" => "malformed").increment(1);
            return Err(Status::unauthenticated("invalid credential"));
        }
        match self
            .store
            .principal_for_key(&raw, now_millis())
            .await
            .map_err(store_status)?
        {
            Some(p) => {
                metrics::counter!("oneflow_auth_validations_total", "result" => "ok").increment(1);
                Ok(Response::new(self.to_proto(p)))
            }
            None => {
                metrics::counter!("oneflow_auth_validations_total", "result" => "rejected").increment(1);
                Err(Status::unauthenticated("invalid credential"))
            }
        }
    }

    type WatchRevocationsStream = RevocationStream;

    async fn watch_revocations(
        &self,
        _request: Request<pb::WatchRevocationsRequest>,
    ) -> Result<Response<Self::WatchRevocationsStream>, Status> {
        Err(not_yet("WatchRevocations"))
    }

    async fn register(&self, _r: Request<pb::RegisterRequest>) -> Result<Response<pb::User>, Status> {
        Err(not_yet("Register"))
    }
    async fn login(&self, _r: Request<pb::LoginRequest>) -> Result<Response<pb::TokenPair>, Status> {
        Err(not_yet("Login"))
    }
    async fn refresh(&self, _r: Request<pb::RefreshRequest>) -> Result<Response<pb::TokenPair>, Status> {
        Err(not_yet("Refresh"))
    }
    async fn logout(&self, _r: Request<pb::LogoutRequest>) -> Result<Response<pb::LogoutResponse>, Status> {
        Err(not_yet("Logout"))
    }
    async fn get_user(&self, _r: Request<pb::GetUserRequest>) -> Result<Response<pb::User>, Status> {
        Err(not_yet("GetUser"))
    }
    async fn create_api_key(
        &self,
        _r: Request<pb::CreateApiKeyRequest>,
    ) -> Result<Response<pb::CreatedApiKey>, Status> {
        Err(not_yet("CreateApiKey"))
    }
    async fn list_api_keys(
        &self,
        _r: Request<pb::ListApiKeysRequest>,
    ) -> Result<Response<pb::ListApiKeysResponse>, Status> {
        Err(not_yet("ListApiKeys"))
    }
    async fn rotate_api_key(
        &self,
        _r: Request<pb::RotateApiKeyRequest>,
    ) -> Result<Response<pb::CreatedApiKey>, Status> {
        Err(not_yet("RotateApiKey"))
    }
    async fn revoke_api_key(&self, _r: Request<pb::RevokeApiKeyRequest>) -> Result<Response<pb::ApiKey>, Status> {
        Err(not_yet("RevokeApiKey"))
    }
    async fn list_users(&self, _r: Request<pb::ListUsersRequest>) -> Result<Response<pb::ListUsersResponse>, Status> {
        Err(not_yet("ListUsers"))
    }
    async fn create_user(&self, _r: Request<pb::CreateUserRequest>) -> Result<Response<pb::User>, Status> {
        Err(not_yet("CreateUser"))
    }
    async fn update_user(&self, _r: Request<pb::UpdateUserRequest>) -> Result<Response<pb::User>, Status> {
        Err(not_yet("UpdateUser"))
    }
    async fn list_audit_events(
        &self,
        _r: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        Err(not_yet("ListAuditEvents"))
    }
}
