//! The `AuthService` gRPC server: validated requests in, precise statuses out.
//! Authorisation of management calls is decided here from the acting user's
//! stored role (the gateway's view is never trusted), and every change that
//! matters is written to the audit log.
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::Stream;
use futures::StreamExt as _;
use oneflow_proto::auth::v1 as pb;
use oneflow_proto::auth::v1::auth_service_server::AuthService;
use oneflow_proto::common::v1::{ErrorInfo, KeyLimits};
use rand::RngCore as _;
use tokio_stream::wrappers::BroadcastStream;
use tonic::{Code, Request, Response, Status};

use crate::clock::Clock;
use crate::config::AuthConfig;
use crate::domain::{Credential, Principal, Role, Scope};
use crate::jwt::{Tokens, looks_like_jwt};
use crate::keys;
use crate::passwords::Passwords;
use crate::revocations::{Revocations, Revoked};
use crate::store::{AuditEntry, AuthStore, KeyRecord, NewKey, RefreshUse, StoreError, UserRecord};

/// Prefix of refresh tokens (opaque, 32 random bytes).
const REFRESH_PREFIX: &str = "ofr_";
const MAX_NAME_LEN: usize = 100;
const MAX_PAGE: u32 = 500;

struct Inner {
    /// Cancelled when the server starts draining, so revocation streams end
    /// and do not hold the drain open.
    draining: tokio_util::sync::CancellationToken,
    store: AuthStore,
    tokens: Tokens,
    passwords: Passwords,
    clock: Clock,
    revocations: Revocations,
    config: AuthConfig,
}

/// gRPC implementation of the auth service.
#[derive(Clone)]
pub struct AuthGrpc {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AuthGrpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthGrpc").finish_non_exhaustive()
    }
}

fn store_status(e: StoreError) -> Status {
    match e {
        StoreError::Conflict => Status::already_exists("already exists"),
        StoreError::Connect(_) | StoreError::Query(_) => {
            tracing::error!(error = %e, "auth store");
            oneflow_runtime::count_db_error(match &e {
                StoreError::Query(q) => Some(q),
                _ => None,
            });
            Status::unavailable("auth storage unavailable")
        }
        StoreError::Migrate(_) | StoreError::Corrupt(_) => {
            tracing::error!(error = %e, "auth store");
            Status::internal("auth storage error")
        }
    }
}

fn invalid(param: &str, message: impl Into<String>) -> Status {
    oneflow_proto::status_with_info(
        Code::InvalidArgument,
        message,
        ErrorInfo {
            code: "invalid_request_error".into(),
            param: param.into(),
            ..ErrorInfo::default()
        },
    )
}

fn forbidden() -> Status {
    Status::permission_denied("you are not allowed to do this")
}

/// Trims and lower-cases an email, and checks its shape.
pub(crate) fn normalise_email(raw: &str) -> Result<String, Status> {
    let email = raw.trim().to_lowercase();
    let valid = email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.contains('@')
        });
    if valid {
        Ok(email)
    } else {
        Err(invalid("email", "a valid email address is required"))
    }
}

fn to_millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn user_proto(u: &UserRecord) -> pb::User {
    pb::User {
        id: u.id.clone(),
        email: u.email.clone(),
        role: pb::Role::from(u.role).into(),
        disabled: u.disabled_at.is_some(),
        created_at_millis: u.created_at,
    }
}

fn key_proto(k: &KeyRecord) -> pb::ApiKey {
    pb::ApiKey {
        id: k.id.clone(),
        owner_user_id: k.user_id.clone(),
        name: k.name.clone(),
        prefix: k.prefix.clone(),
        scopes: k.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
        created_at_millis: k.created_at,
        expires_at_millis: k.expires_at.unwrap_or(0),
        revoked_at_millis: k.revoked_at.unwrap_or(0),
        grace_until_millis: k.grace_until.unwrap_or(0),
        limits: k.limits.as_deref().and_then(|j| crate::store::limits_from_json(j).ok()),
    }
}

fn limits_json(l: &KeyLimits) -> Result<String, Status> {
    if let Some(c) = &l.credits_per_month {
        let ok = c.parse::<f64>().is_ok_and(|v| v >= 0.0);
        if !ok {
            return Err(invalid("limits.credits_per_month", "must be a non-negative decimal"));
        }
    }
    Ok(serde_json::json!({
        "requests_per_minute": l.requests_per_minute,
        "tokens_per_minute": l.tokens_per_minute,
        "requests_per_day": l.requests_per_day,
        "tokens_per_day": l.tokens_per_day,
        "tokens_per_month": l.tokens_per_month,
        "credits_per_month": l.credits_per_month,
    })
    .to_string())
}

fn role_from_proto(raw: i32) -> Option<Role> {
    match pb::Role::try_from(raw).ok()? {
        pb::Role::User => Some(Role::User),
        pb::Role::Admin => Some(Role::Admin),
        pb::Role::Unspecified => None,
    }
}

/// Who is acting, as the gateway reports it (the user is checked in the store).
struct Acting {
    user: UserRecord,
    request_id: String,
    address: String,
}

type RevocationStream = Pin<Box<dyn Stream<Item = Result<pb::RevocationEvent, Status>> + Send>>;

impl AuthGrpc {
    /// A server over `store`.
    pub fn new(store: AuthStore, config: &AuthConfig, clock: Clock, revocations: Revocations) -> Self {
        Self {
            inner: Arc::new(Inner {
                draining: tokio_util::sync::CancellationToken::new(),
                store,
                tokens: Tokens::new(&config.jwt),
                passwords: Passwords::new(config.bcrypt_cost),
                clock,
                revocations,
                config: config.clone(),
            }),
        }
    }

    /// Ends every open revocation stream (called when shutdown begins).
    pub fn drain(&self) {
        self.inner.draining.cancel();
    }

    fn now(&self) -> i64 {
        self.inner.clock.now_millis()
    }

    async fn audit(&self, action: &str, actor: Option<&str>, target: Option<&str>, address: &str, request_id: &str) {
        let entry = AuditEntry {
            action,
            actor_user_id: actor,
            target,
            client_address: (!address.is_empty()).then_some(address),
            request_id: (!request_id.is_empty()).then_some(request_id),
        };
        if let Err(e) = self.inner.store.audit(&entry, self.now()).await {
            tracing::error!(error = %e, action, "audit write failed");
        }
    }

    async fn acting(&self, actor: Option<pb::Actor>) -> Result<Acting, Status> {
        let actor = actor
            .filter(|a| !a.user_id.is_empty())
            .ok_or_else(|| Status::unauthenticated("no acting user"))?;
        let user = self
            .inner
            .store
            .user_by_id(&actor.user_id)
            .await
            .map_err(store_status)?
            .filter(|u| u.disabled_at.is_none())
            .ok_or_else(|| Status::unauthenticated("the acting user does not exist or is disabled"))?;
        Ok(Acting {
            user,
            request_id: actor.request_id,
            address: actor.client_address,
        })
    }

    fn new_refresh_secret() -> (String, String) {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token = format!("{REFRESH_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
        let hash = keys::hash_secret(&token);
        (token, hash)
    }

    async fn issue_pair(&self, user: &UserRecord, family: Option<String>) -> Result<pb::TokenPair, Status> {
        let now = self.now();
        let access = self
            .inner
            .tokens
            .issue(&user.id, user.role, now)
            .map_err(|_| Status::internal("cannot sign token"))?;
        let (refresh, hash) = Self::new_refresh_secret();
        let family = family.unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        let expires = now.saturating_add(to_millis(self.inner.config.jwt.refresh_ttl));
        self.inner
            .store
            .insert_refresh(&family, &user.id, &hash, now, expires)
            .await
            .map_err(store_status)?;
        Ok(pb::TokenPair {
            access_token: access,
            refresh_token: refresh,
            expires_in_seconds: u64::try_from(self.inner.tokens.ttl_secs()).unwrap_or(0),
            token_type: "Bearer".to_owned(),
        })
    }

    fn cache_ttl(&self, expires_at: i64, now: i64) -> u64 {
        let ttl = to_millis(self.inner.config.principal_cache_ttl);
        let ttl = if expires_at > 0 { ttl.min(expires_at - now) } else { ttl };
        u64::try_from(ttl.max(0)).unwrap_or(0)
    }

    fn principal_proto(&self, p: Principal, kind: pb::CredentialKind, now: i64) -> pb::Principal {
        pb::Principal {
            cache_ttl_millis: self.cache_ttl(p.expires_at_millis, now),
            user_id: p.user_id,
            key_id: p.key_id,
            kind: kind.into(),
            role: pb::Role::from(p.role).into(),
            scopes: p.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            expires_at_millis: p.expires_at_millis,
            limits: p.limits,
            key_prefix: p.key_prefix,
        }
    }

    async fn validate_jwt(&self, raw: &str, now: i64) -> Result<pb::Principal, Status> {
        let claims = self
            .inner
            .tokens
            .verify(raw, now)
            .map_err(|_| Status::unauthenticated("invalid credential"))?;
        let user = self
            .inner
            .store
            .user_by_id(&claims.sub)
            .await
            .map_err(store_status)?
            .filter(|u| u.disabled_at.is_none())
            .ok_or_else(|| Status::unauthenticated("invalid credential"))?;
        let principal = Principal {
            user_id: user.id,
            key_id: String::new(),
            key_prefix: String::new(),
            role: user.role,
            scopes: vec![Scope::Inference, Scope::Admin],
            expires_at_millis: claims.exp.saturating_mul(1000),
            limits: None,
        };
        Ok(self.principal_proto(principal, pb::CredentialKind::Jwt, now))
    }

    /// The key `id` if `acting` may manage it (its owner, or an admin).
    async fn manageable_key(&self, acting: &Acting, id: &str) -> Result<KeyRecord, Status> {
        let key = self.inner.store.key_by_id(id).await.map_err(store_status)?;
        match key {
            Some(k) if k.user_id == acting.user.id || acting.user.role == Role::Admin => Ok(k),
            _ => Err(Status::not_found("no such key")),
        }
    }

    fn require_admin(acting: &Acting) -> Result<(), Status> {
        if acting.user.role == Role::Admin {
            Ok(())
        } else {
            Err(forbidden())
        }
    }

    async fn check_password(&self, password: &str) -> Result<(), Status> {
        if password.chars().count() < self.inner.config.min_password_length {
            return Err(invalid(
                "password",
                format!(
                    "password must be at least {} characters",
                    self.inner.config.min_password_length
                ),
            ));
        }
        if password.len() > 72 {
            // bcrypt reads 72 bytes; longer would silently ignore the rest.
            return Err(invalid("password", "password must be at most 72 bytes"));
        }
        Ok(())
    }

    async fn new_user(&self, email: &str, password: &str, role: Role) -> Result<UserRecord, Status> {
        let email = normalise_email(email)?;
        self.check_password(password).await?;
        let hash = self
            .inner
            .passwords
            .hash(password)
            .await
            .ok_or_else(|| Status::internal("cannot hash password"))?;
        self.inner
            .store
            .create_user(&email, &hash, role, self.now())
            .await
            .map_err(|e| match e {
                StoreError::Conflict => Status::already_exists("a user with this email already exists"),
                other => store_status(other),
            })
    }
}

#[tonic::async_trait]
impl AuthService for AuthGrpc {
    #[tracing::instrument(skip_all)]
    async fn validate_credential(
        &self,
        request: Request<pb::ValidateCredentialRequest>,
    ) -> Result<Response<pb::Principal>, Status> {
        let Credential(raw) = Credential::try_from(request.into_inner())?;
        let now = self.now();
        let result = if keys::looks_like_key(&raw) {
            match self
                .inner
                .store
                .principal_for_key(&raw, now)
                .await
                .map_err(store_status)?
            {
                Some(p) => Ok(self.principal_proto(p, pb::CredentialKind::ApiKey, now)),
                None => Err(Status::unauthenticated("invalid credential")),
            }
        } else if looks_like_jwt(&raw) {
            self.validate_jwt(&raw, now).await
        } else {
            Err(Status::unauthenticated("invalid credential"))
        };
        let label = if result.is_ok() { "ok" } else { "rejected" };
        metrics::counter!("oneflow_auth_validations_total", "result" => label).increment(1);
        result.map(Response::new)
    }

    type WatchRevocationsStream = RevocationStream;

    async fn watch_revocations(
        &self,
        _request: Request<pb::WatchRevocationsRequest>,
    ) -> Result<Response<Self::WatchRevocationsStream>, Status> {
        let stream = BroadcastStream::new(self.inner.revocations.subscribe())
            .map(|item| match item {
                Ok(event) => Ok(event.to_proto("revoked")),
                // A lagging subscriber must drop everything it cached.
                Err(_) => Err(Status::data_loss(
                    "revocations were missed; drop every cached credential",
                )),
            })
            .take_until(self.inner.draining.clone().cancelled_owned());
        Ok(Response::new(Box::pin(stream)))
    }

    async fn register(&self, request: Request<pb::RegisterRequest>) -> Result<Response<pb::User>, Status> {
        if !self.inner.config.allow_registration {
            return Err(Status::permission_denied(
                "registration is closed; ask an administrator",
            ));
        }
        let r = request.into_inner();
        let actor = r.actor.unwrap_or_default();
        let user = self.new_user(&r.email, &r.password, Role::User).await?;
        self.audit(
            "user.register",
            Some(&user.id),
            Some(&user.id),
            &actor.client_address,
            &actor.request_id,
        )
        .await;
        metrics::counter!("oneflow_funnel_total", "step" => "user_registered").increment(1);
        Ok(Response::new(user_proto(&user)))
    }

    async fn login(&self, request: Request<pb::LoginRequest>) -> Result<Response<pb::TokenPair>, Status> {
        let r = request.into_inner();
        let actor = r.actor.unwrap_or_default();
        let email = r.email.trim().to_lowercase();
        let limits = &self.inner.config.login_limits;
        let since = self.now() - to_millis(limits.window);
        let (by_account, by_address) = self
            .inner
            .store
            .login_failures(&email, &actor.client_address, since)
            .await
            .map_err(store_status)?;
        if by_account >= i64::from(limits.per_account) || by_address >= i64::from(limits.per_address) {
            metrics::counter!("oneflow_auth_logins_total", "result" => "throttled").increment(1);
            return Err(oneflow_proto::status_with_info(
                Code::ResourceExhausted,
                "too many failed logins; try again later",
                ErrorInfo {
                    code: "rate_limit_exceeded".into(),
                    retry_after_millis: u64::try_from(limits.window.as_millis()).unwrap_or(u64::MAX),
                    ..ErrorInfo::default()
                },
            ));
        }
        let user = self.inner.store.user_by_email(&email).await.map_err(store_status)?;
        let hash = user.as_ref().and_then(|u| u.password_hash.as_deref());
        let password_ok = self.inner.passwords.verify(&r.password, hash).await;
        let user = match user {
            Some(u) if password_ok && u.disabled_at.is_none() => u,
            _ => {
                metrics::counter!("oneflow_auth_logins_total", "result" => "failure").increment(1);
                self.audit(
                    "login.failure",
                    None,
                    Some(&email),
                    &actor.client_address,
                    &actor.request_id,
                )
                .await;
                return Err(Status::unauthenticated("invalid email or password"));
            }
        };
        metrics::counter!("oneflow_auth_logins_total", "result" => "success").increment(1);
        self.audit(
            "login.success",
            Some(&user.id),
            Some(&user.id),
            &actor.client_address,
            &actor.request_id,
        )
        .await;
        Ok(Response::new(self.issue_pair(&user, None).await?))
    }

    async fn refresh(&self, request: Request<pb::RefreshRequest>) -> Result<Response<pb::TokenPair>, Status> {
        let r = request.into_inner();
        let actor = r.actor.unwrap_or_default();
        let token = r.refresh_token.trim();
        if !token.starts_with(REFRESH_PREFIX) || token.len() > 128 {
            return Err(Status::unauthenticated("invalid refresh token"));
        }
        match self
            .inner
            .store
            .use_refresh(&keys::hash_secret(token), self.now())
            .await
            .map_err(store_status)?
        {
            RefreshUse::Rotated { user_id, family_id } => {
                let user = self
                    .inner
                    .store
                    .user_by_id(&user_id)
                    .await
                    .map_err(store_status)?
                    .filter(|u| u.disabled_at.is_none())
                    .ok_or_else(|| Status::unauthenticated("invalid refresh token"))?;
                Ok(Response::new(self.issue_pair(&user, Some(family_id)).await?))
            }
            RefreshUse::Reused { user_id, family_id } => {
                tracing::warn!(%user_id, "refresh token reused; its family is revoked");
                self.audit(
                    "refresh.reuse",
                    Some(&user_id),
                    Some(&family_id),
                    &actor.client_address,
                    &actor.request_id,
                )
                .await;
                Err(Status::unauthenticated("invalid refresh token"))
            }
            RefreshUse::Invalid => Err(Status::unauthenticated("invalid refresh token")),
        }
    }

    async fn logout(&self, request: Request<pb::LogoutRequest>) -> Result<Response<pb::LogoutResponse>, Status> {
        let r = request.into_inner();
        let actor = r.actor.unwrap_or_default();
        let hash = keys::hash_secret(r.refresh_token.trim());
        if let Some(user_id) = self
            .inner
            .store
            .revoke_refresh_family(&hash, self.now())
            .await
            .map_err(store_status)?
        {
            self.audit(
                "logout",
                Some(&user_id),
                Some(&user_id),
                &actor.client_address,
                &actor.request_id,
            )
            .await;
        }
        Ok(Response::new(pb::LogoutResponse {}))
    }

    async fn get_user(&self, request: Request<pb::GetUserRequest>) -> Result<Response<pb::User>, Status> {
        let id = request.into_inner().user_id;
        let user = self
            .inner
            .store
            .user_by_id(&id)
            .await
            .map_err(store_status)?
            .ok_or_else(|| Status::not_found("no such user"))?;
        Ok(Response::new(user_proto(&user)))
    }

    async fn create_api_key(
        &self,
        request: Request<pb::CreateApiKeyRequest>,
    ) -> Result<Response<pb::CreatedApiKey>, Status> {
        let r = request.into_inner();
        let acting = self.acting(r.actor).await?;
        let owner = if r.owner_user_id.is_empty() || r.owner_user_id == acting.user.id {
            acting.user.clone()
        } else {
            Self::require_admin(&acting)?;
            self.inner
                .store
                .user_by_id(&r.owner_user_id)
                .await
                .map_err(store_status)?
                .ok_or_else(|| Status::not_found("no such user"))?
        };
        let name = r.name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_LEN {
            return Err(invalid("name", format!("name must be 1 to {MAX_NAME_LEN} characters")));
        }
        let mut scopes = Vec::new();
        for raw in if r.scopes.is_empty() {
            vec!["inference".to_owned()]
        } else {
            r.scopes
        } {
            let scope = Scope::parse(&raw)
                .ok_or_else(|| invalid("scopes", format!("unknown scope `{raw}` (use inference, admin)")))?;
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        if scopes.contains(&Scope::Admin) && owner.role != Role::Admin {
            return Err(Status::permission_denied(
                "only administrators' keys may have the admin scope",
            ));
        }
        let now = self.now();
        let expires_at = match r.expires_at_millis {
            0 => None,
            t if t <= now => return Err(invalid("expires_at", "expiry must be in the future")),
            t => Some(t),
        };
        let limits = r.limits.as_ref().map(limits_json).transpose()?;
        let (key, secret) = self
            .inner
            .store
            .create_key(
                &NewKey {
                    user_id: &owner.id,
                    name,
                    scopes: &scopes,
                    limits: limits.as_deref(),
                    expires_at,
                },
                now,
            )
            .await
            .map_err(store_status)?;
        self.audit(
            "key.create",
            Some(&acting.user.id),
            Some(&key.id),
            &acting.address,
            &acting.request_id,
        )
        .await;
        if self
            .inner
            .store
            .list_keys(&owner.id)
            .await
            .map(|k| k.len() == 1)
            .unwrap_or(false)
        {
            metrics::counter!("oneflow_funnel_total", "step" => "first_key_created").increment(1);
        }
        Ok(Response::new(pb::CreatedApiKey {
            key: Some(key_proto(&key)),
            secret,
        }))
    }

    async fn list_api_keys(
        &self,
        request: Request<pb::ListApiKeysRequest>,
    ) -> Result<Response<pb::ListApiKeysResponse>, Status> {
        let r = request.into_inner();
        let acting = self.acting(r.actor).await?;
        let owner = if r.owner_user_id.is_empty() {
            acting.user.id.clone()
        } else {
            r.owner_user_id
        };
        if owner != acting.user.id {
            Self::require_admin(&acting)?;
        }
        let keys = self.inner.store.list_keys(&owner).await.map_err(store_status)?;
        Ok(Response::new(pb::ListApiKeysResponse {
            keys: keys.iter().map(key_proto).collect(),
        }))
    }

    async fn rotate_api_key(
        &self,
        request: Request<pb::RotateApiKeyRequest>,
    ) -> Result<Response<pb::CreatedApiKey>, Status> {
        let r = request.into_inner();
        let acting = self.acting(r.actor).await?;
        let old = self.manageable_key(&acting, &r.key_id).await?;
        let now = self.now();
        if old.revoked_at.is_some()
            || old.grace_until.is_some_and(|g| g <= now)
            || old.expires_at.is_some_and(|e| e <= now)
        {
            return Err(Status::failed_precondition(
                "this key no longer works and cannot be rotated",
            ));
        }
        let grace = r
            .grace_seconds
            .map_or(self.inner.config.default_key_grace, Duration::from_secs);
        let grace_until = now.saturating_add(to_millis(grace));
        let (key, secret) = self
            .inner
            .store
            .rotate_key(&old, grace_until, now)
            .await
            .map_err(store_status)?;
        if grace.is_zero() {
            self.inner.revocations.publish(Revoked::Key(old.id.clone())).await;
        }
        self.audit(
            "key.rotate",
            Some(&acting.user.id),
            Some(&old.id),
            &acting.address,
            &acting.request_id,
        )
        .await;
        Ok(Response::new(pb::CreatedApiKey {
            key: Some(key_proto(&key)),
            secret,
        }))
    }

    async fn revoke_api_key(&self, request: Request<pb::RevokeApiKeyRequest>) -> Result<Response<pb::ApiKey>, Status> {
        let r = request.into_inner();
        let acting = self.acting(r.actor).await?;
        let key = self.manageable_key(&acting, &r.key_id).await?;
        let revoked = self
            .inner
            .store
            .revoke_key(&key.id, self.now())
            .await
            .map_err(store_status)?
            .unwrap_or(key);
        self.inner.revocations.publish(Revoked::Key(revoked.id.clone())).await;
        self.audit(
            "key.revoke",
            Some(&acting.user.id),
            Some(&revoked.id),
            &acting.address,
            &acting.request_id,
        )
        .await;
        Ok(Response::new(key_proto(&revoked)))
    }

    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        let r = request.into_inner();
        let acting = self.acting(r.actor).await?;
        Self::require_admin(&acting)?;
        let limit = if r.limit == 0 { 100 } else { r.limit.min(MAX_PAGE) };
        let users = self
            .inner
            .store
            .list_users(limit, &r.after_id)
            .await
            .map_err(store_status)?;
        Ok(Response::new(pb::ListUsersResponse {
            users: users.iter().map(user_proto).collect(),
        }))
    }

    async fn create_user(&self, request: Request<pb::CreateUserRequest>) -> Result<Response<pb::User>, Status> {
        let r = request.into_inner();
        let acting = self.acting(r.actor).await?;
        Self::require_admin(&acting)?;
        let role = role_from_proto(r.role).unwrap_or(Role::User);
        let user = self.new_user(&r.email, &r.password, role).await?;
        self.audit(
            "user.create",
            Some(&acting.user.id),
            Some(&user.id),
            &acting.address,
            &acting.request_id,
        )
        .await;
        Ok(Response::new(user_proto(&user)))
    }

    async fn update_user(&self, request: Request<pb::UpdateUserRequest>) -> Result<Response<pb::User>, Status> {
        let r = request.into_inner();
        let acting = self.acting(r.actor).await?;
        Self::require_admin(&acting)?;
        let role = match r.role {
            Some(raw) => Some(role_from_proto(raw).ok_or_else(|| invalid("role", "role must be user or admin"))?),
            None => None,
        };
        if r.user_id == acting.user.id && (r.disabled == Some(true) || role == Some(Role::User)) {
            return Err(Status::failed_precondition(
                "administrators cannot disable or demote themselves",
            ));
        }
        let before = self
            .inner
            .store
            .user_by_id(&r.user_id)
            .await
            .map_err(store_status)?
            .ok_or_else(|| Status::not_found("no such user"))?;
        let after = self
            .inner
            .store
            .update_user(&r.user_id, role, r.disabled, self.now())
            .await
            .map_err(store_status)?
            .ok_or_else(|| Status::not_found("no such user"))?;
        if after.role != before.role {
            self.audit(
                "user.role",
                Some(&acting.user.id),
                Some(&after.id),
                &acting.address,
                &acting.request_id,
            )
            .await;
        }
        if after.disabled_at.is_some() != before.disabled_at.is_some() {
            let action = if after.disabled_at.is_some() {
                "user.disable"
            } else {
                "user.enable"
            };
            self.audit(
                action,
                Some(&acting.user.id),
                Some(&after.id),
                &acting.address,
                &acting.request_id,
            )
            .await;
        }
        if after.disabled_at.is_some() || after.role != before.role {
            // Cached principals carry the role and enabled state: drop them.
            self.inner.revocations.publish(Revoked::User(after.id.clone())).await;
        }
        Ok(Response::new(user_proto(&after)))
    }

    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        let r = request.into_inner();
        let acting = self.acting(r.actor).await?;
        Self::require_admin(&acting)?;
        let limit = if r.limit == 0 { 100 } else { r.limit.min(MAX_PAGE) };
        let rows = self
            .inner
            .store
            .list_audit(limit, r.before_millis)
            .await
            .map_err(store_status)?;
        let events = rows
            .into_iter()
            .map(|(id, action, actor, target, address, request_id, at)| pb::AuditEvent {
                id,
                action,
                actor_user_id: actor.unwrap_or_default(),
                target: target.unwrap_or_default(),
                at_millis: at,
                client_address: address.unwrap_or_default(),
                request_id: request_id.unwrap_or_default(),
            })
            .collect();
        Ok(Response::new(pb::ListAuditEventsResponse { events }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(normalise_email("  Alice@Example.COM ").unwrap(), "alice@example.com");
        for bad in [
            "",
            "alice",
            "@example.com",
            "alice@",
            "alice@example",
            "a b@example.com",
            "a@b@c.com",
        ] {
            assert!(normalise_email(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn email_check_never_panics(raw in ".{0,300}") {
            let _ = normalise_email(&raw);
        }
    }
}
