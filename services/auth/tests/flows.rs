//! Every auth flow through the gRPC service, on SQLite and on PostgreSQL
//! (required under CI=true), with time moved by the service clock, not slept.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: failing loudly is the point"
)]

use std::time::Duration;

use oneflow_auth::{AuthConfig, AuthGrpc, AuthStore, Clock, LoginLimits, Revocations, Revoked};
use oneflow_proto::auth::v1 as pb;
use oneflow_proto::auth::v1::auth_service_server::AuthService;
use oneflow_runtime::{DatabaseConfig, Secret};
use tonic::{Code, Request};

struct Env {
    name: &'static str,
    grpc: AuthGrpc,
    store: AuthStore,
    clock: Clock,
    revocations: Revocations,
    admin_id: String,
}

async fn envs() -> Vec<Env> {
    let dir = Box::leak(Box::new(tempfile::tempdir().unwrap()));
    let mut urls = vec![("sqlite", format!("sqlite://{}", dir.path().join("flows.db").display()))];
    if let Some(pg) = oneflow_test_support::fresh_postgres().await {
        urls.push(("postgres", pg));
    }
    let mut out = Vec::new();
    for (name, url) in urls {
        let config = AuthConfig {
            database: DatabaseConfig {
                url: Secret::new(url),
                ..DatabaseConfig::default()
            },
            login_limits: LoginLimits {
                per_account: 3,
                per_address: 100,
                window: Duration::from_secs(900),
            },
            jwt: oneflow_auth::JwtConfig {
                secret: Secret::new("t".repeat(40)),
                ..oneflow_auth::JwtConfig::default()
            },
            ..AuthConfig::default()
        };
        let store = AuthStore::connect(&config.database).await.unwrap();
        store.migrate().await.unwrap();
        let admin = store.bootstrap_admin("root@example.com").await.unwrap().unwrap();
        let clock = Clock::system();
        let revocations = Revocations::new(None);
        let grpc = AuthGrpc::new(store.clone(), &config, clock.clone(), revocations.clone());
        out.push(Env {
            name,
            grpc,
            store,
            clock,
            revocations,
            admin_id: admin.user_id,
        });
    }
    out
}

fn actor(user_id: &str) -> Option<pb::Actor> {
    Some(pb::Actor {
        user_id: user_id.into(),
        request_id: "req-1".into(),
        client_address: "203.0.113.9".into(),
    })
}

async fn validate(grpc: &AuthGrpc, credential: &str) -> Result<pb::Principal, tonic::Status> {
    grpc.validate_credential(Request::new(pb::ValidateCredentialRequest {
        credential: credential.into(),
        request_id: String::new(),
    }))
    .await
    .map(tonic::Response::into_inner)
}

async fn register(grpc: &AuthGrpc, email: &str, password: &str) -> Result<pb::User, tonic::Status> {
    grpc.register(Request::new(pb::RegisterRequest {
        email: email.into(),
        password: password.into(),
        actor: None,
    }))
    .await
    .map(tonic::Response::into_inner)
}

async fn login(grpc: &AuthGrpc, email: &str, password: &str) -> Result<pb::TokenPair, tonic::Status> {
    grpc.login(Request::new(pb::LoginRequest {
        email: email.into(),
        password: password.into(),
        actor: actor(""),
    }))
    .await
    .map(tonic::Response::into_inner)
}

async fn refresh(grpc: &AuthGrpc, token: &str) -> Result<pb::TokenPair, tonic::Status> {
    grpc.refresh(Request::new(pb::RefreshRequest {
        refresh_token: token.into(),
        actor: None,
    }))
    .await
    .map(tonic::Response::into_inner)
}

const PASSWORD: &str = "correct horse battery";

#[tokio::test]
async fn users_passwords_and_tokens() {
    for env in envs().await {
        let (g, name) = (&env.grpc, env.name);
        let short = register(g, "a@example.com", "short").await.unwrap_err();
        assert_eq!(short.code(), Code::InvalidArgument, "{name}");
        assert_eq!(oneflow_proto::error_info(&short).unwrap().param, "password");
        let user = register(g, " Alice@Example.com ", PASSWORD).await.unwrap();
        assert_eq!(user.email, "alice@example.com");
        assert_eq!(
            register(g, "ALICE@example.com", PASSWORD).await.unwrap_err().code(),
            Code::AlreadyExists,
            "{name}"
        );

        // Unknown user and wrong password fail alike.
        let unknown = login(g, "nobody@example.com", PASSWORD).await.unwrap_err();
        let wrong = login(g, "alice@example.com", "wrong password here").await.unwrap_err();
        assert_eq!(
            (unknown.code(), unknown.message()),
            (wrong.code(), wrong.message()),
            "{name}"
        );

        let pair = login(g, "alice@example.com", PASSWORD).await.unwrap();
        assert_eq!(pair.expires_in_seconds, 1800);
        let p = validate(g, &pair.access_token).await.unwrap();
        assert_eq!(p.user_id, user.id);
        assert_eq!(p.kind, i32::from(pb::CredentialKind::Jwt));
        assert!(p.cache_ttl_millis <= 60_000);

        // Rotation: each refresh gives a new pair; the old refresh token is spent.
        let second = refresh(g, &pair.refresh_token).await.unwrap();
        assert_ne!(second.refresh_token, pair.refresh_token);
        let third = refresh(g, &second.refresh_token).await.unwrap();
        // Reuse of a spent token revokes the whole family, including the newest.
        assert_eq!(
            refresh(g, &pair.refresh_token).await.unwrap_err().code(),
            Code::Unauthenticated,
            "{name}"
        );
        assert_eq!(
            refresh(g, &third.refresh_token).await.unwrap_err().code(),
            Code::Unauthenticated,
            "{name}: family not revoked"
        );

        // Logout revokes the family of a fresh login.
        let pair = login(g, "alice@example.com", PASSWORD).await.unwrap();
        g.logout(Request::new(pb::LogoutRequest {
            refresh_token: pair.refresh_token.clone(),
            actor: None,
        }))
        .await
        .unwrap();
        assert_eq!(
            refresh(g, &pair.refresh_token).await.unwrap_err().code(),
            Code::Unauthenticated
        );

        // Access tokens expire after 30 minutes of service time.
        env.clock.advance(Duration::from_secs(30 * 60 + 1));
        assert_eq!(
            validate(g, &pair.access_token).await.unwrap_err().code(),
            Code::Unauthenticated,
            "{name}"
        );

        // Three failures lock the account for the window, even with the right password.
        for _ in 0..3 {
            login(g, "alice@example.com", "wrong password here").await.unwrap_err();
        }
        let locked = login(g, "alice@example.com", PASSWORD).await.unwrap_err();
        assert_eq!(locked.code(), Code::ResourceExhausted, "{name}");
        env.clock.advance(Duration::from_secs(901));
        login(g, "alice@example.com", PASSWORD).await.unwrap();

        // Garbage never validates.
        for bad in ["x.y.z", "eyJhbGciOiJub25lIn0.e30.", "ofr_abc", "Bearer"] {
            assert_eq!(
                validate(g, bad).await.unwrap_err().code(),
                Code::Unauthenticated,
                "{name}: {bad}"
            );
        }
    }
}

#[tokio::test]
async fn api_keys_rotate_with_grace_and_revoke_at_once() {
    for env in envs().await {
        let (g, name) = (&env.grpc, env.name);
        let user = register(g, "bob@example.com", PASSWORD).await.unwrap();
        let mut events = env.revocations.subscribe();

        let created = g
            .create_api_key(Request::new(pb::CreateApiKeyRequest {
                actor: actor(&user.id),
                name: "ci".into(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        let key = created.key.unwrap();
        assert_eq!(key.scopes, vec!["inference"]);
        assert!(created.secret.starts_with("ofk_") && created.secret.len() >= 47);
        assert_eq!(validate(g, &created.secret).await.unwrap().key_id, key.id);

        // A user cannot give a key the admin scope, nor touch another's keys.
        let denied = g
            .create_api_key(Request::new(pb::CreateApiKeyRequest {
                actor: actor(&user.id),
                name: "x".into(),
                scopes: vec!["admin".into()],
                ..Default::default()
            }))
            .await
            .unwrap_err();
        assert_eq!(denied.code(), Code::PermissionDenied, "{name}");
        let other = register(g, "eve@example.com", PASSWORD).await.unwrap();
        let stolen = g
            .revoke_api_key(Request::new(pb::RevokeApiKeyRequest {
                actor: actor(&other.id),
                key_id: key.id.clone(),
            }))
            .await;
        assert_eq!(stolen.unwrap_err().code(), Code::NotFound, "{name}");

        // Rotation with the default grace: the old key works for 7 days, not after.
        let rotated = g
            .rotate_api_key(Request::new(pb::RotateApiKeyRequest {
                actor: actor(&user.id),
                key_id: key.id.clone(),
                grace_seconds: None,
            }))
            .await
            .unwrap()
            .into_inner();
        let old_principal = validate(g, &created.secret).await.unwrap();
        assert!(old_principal.cache_ttl_millis <= 60_000);
        env.clock.advance(Duration::from_secs(7 * 24 * 3600 - 60));
        validate(g, &created.secret).await.unwrap();
        env.clock.advance(Duration::from_secs(61));
        assert_eq!(
            validate(g, &created.secret).await.unwrap_err().code(),
            Code::Unauthenticated,
            "{name}: grace over"
        );
        validate(g, &rotated.secret).await.unwrap();

        // Rotation with no grace stops the old key at once and pushes a revocation.
        let next = g
            .rotate_api_key(Request::new(pb::RotateApiKeyRequest {
                actor: actor(&user.id),
                key_id: rotated.key.as_ref().unwrap().id.clone(),
                grace_seconds: Some(0),
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            validate(g, &rotated.secret).await.unwrap_err().code(),
            Code::Unauthenticated
        );
        assert_eq!(events.recv().await.unwrap(), Revoked::Key(rotated.key.unwrap().id));

        // Revocation is immediate and pushed.
        let next_id = next.key.unwrap().id;
        g.revoke_api_key(Request::new(pb::RevokeApiKeyRequest {
            actor: actor(&user.id),
            key_id: next_id.clone(),
        }))
        .await
        .unwrap();
        assert_eq!(
            validate(g, &next.secret).await.unwrap_err().code(),
            Code::Unauthenticated
        );
        assert_eq!(events.recv().await.unwrap(), Revoked::Key(next_id));

        let listed = g
            .list_api_keys(Request::new(pb::ListApiKeysRequest {
                actor: actor(&user.id),
                owner_user_id: String::new(),
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(listed.keys.len(), 3, "{name}");
    }
}

#[tokio::test]
async fn admins_manage_users_and_everything_is_audited() {
    for env in envs().await {
        let (g, name) = (&env.grpc, env.name);
        let user = register(g, "carol@example.com", PASSWORD).await.unwrap();
        let pair = login(g, "carol@example.com", PASSWORD).await.unwrap();
        let key = g
            .create_api_key(Request::new(pb::CreateApiKeyRequest {
                actor: actor(&user.id),
                name: "k".into(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        let mut events = env.revocations.subscribe();

        // A non-admin is refused every admin call.
        let list = g
            .list_users(Request::new(pb::ListUsersRequest {
                actor: actor(&user.id),
                ..Default::default()
            }))
            .await;
        assert_eq!(list.unwrap_err().code(), Code::PermissionDenied, "{name}");
        let audit = g
            .list_audit_events(Request::new(pb::ListAuditEventsRequest {
                actor: actor(&user.id),
                ..Default::default()
            }))
            .await;
        assert_eq!(audit.unwrap_err().code(), Code::PermissionDenied);

        // Disabling stops the user's keys and tokens at once and pushes an event.
        g.update_user(Request::new(pb::UpdateUserRequest {
            actor: actor(&env.admin_id),
            user_id: user.id.clone(),
            role: None,
            disabled: Some(true),
        }))
        .await
        .unwrap();
        assert_eq!(events.recv().await.unwrap(), Revoked::User(user.id.clone()));
        assert_eq!(
            validate(g, &key.secret).await.unwrap_err().code(),
            Code::Unauthenticated,
            "{name}"
        );
        assert_eq!(
            validate(g, &pair.access_token).await.unwrap_err().code(),
            Code::Unauthenticated,
            "{name}"
        );
        assert_eq!(
            refresh(g, &pair.refresh_token).await.unwrap_err().code(),
            Code::Unauthenticated
        );
        assert_eq!(
            login(g, "carol@example.com", PASSWORD).await.unwrap_err().code(),
            Code::Unauthenticated
        );

        // Admin-created admins; role change.
        let made = g
            .create_user(Request::new(pb::CreateUserRequest {
                actor: actor(&env.admin_id),
                email: "dave@example.com".into(),
                password: PASSWORD.into(),
                role: pb::Role::Admin.into(),
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(made.role, i32::from(pb::Role::Admin));

        let events = g
            .list_audit_events(Request::new(pb::ListAuditEventsRequest {
                actor: actor(&env.admin_id),
                limit: 100,
                before_millis: 0,
            }))
            .await
            .unwrap()
            .into_inner()
            .events;
        let actions: Vec<_> = events.iter().map(|e| e.action.as_str()).collect();
        for expected in [
            "user.register",
            "login.success",
            "key.create",
            "user.disable",
            "user.create",
            "admin.bootstrap",
        ] {
            assert!(
                actions.contains(&expected),
                "{name}: {expected} missing from {actions:?}"
            );
        }
        let disable = events.iter().find(|e| e.action == "user.disable").unwrap();
        assert_eq!(disable.actor_user_id, env.admin_id);
        assert_eq!(disable.client_address, "203.0.113.9");
        assert_eq!(disable.request_id, "req-1");
        let _ = &env.store;
    }
}
