//! Auth domain types, separate from the prost types: roles, scopes, principals,
//! and the validated form of incoming requests.
use oneflow_proto::auth::v1 as pb;
use tonic::Status;

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Regular user.
    User,
    /// May manage every user, key and price.
    Admin,
}

impl Role {
    /// Storage form.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }
    /// Parses the storage form.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

impl From<Role> for pb::Role {
    fn from(role: Role) -> Self {
        match role {
            Role::User => pb::Role::User,
            Role::Admin => pb::Role::Admin,
        }
    }
}

/// What an API key may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Model calls: chat, embeddings, audio, models.
    Inference,
    /// Management endpoints.
    Admin,
}

impl Scope {
    /// Storage and wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Inference => "inference",
            Scope::Admin => "admin",
        }
    }
    /// Parses the wire form.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "inference" => Some(Scope::Inference),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }
}

/// The identity behind a validated credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// User id.
    pub user_id: String,
    /// API key id.
    pub key_id: String,
    /// Safe-to-log start of the key.
    pub key_prefix: String,
    /// The user's role.
    pub role: Role,
    /// The key's scopes.
    pub scopes: Vec<Scope>,
    /// Unix ms after which the credential stops working (0 = never).
    pub expires_at_millis: i64,
    /// Per-key limits as stored (JSON), read by billing.
    pub limits: Option<oneflow_proto::common::v1::KeyLimits>,
}

/// A bearer credential as received, checked for shape before any lookup.
#[derive(Debug)]
pub struct Credential(pub String);

/// Longest credential accepted (keys are ~50 chars, JWTs well under this).
const MAX_CREDENTIAL_LEN: usize = 4096;

impl TryFrom<pb::ValidateCredentialRequest> for Credential {
    type Error = Status;

    fn try_from(req: pb::ValidateCredentialRequest) -> Result<Self, Status> {
        let raw = req.credential.trim();
        if raw.is_empty() {
            return Err(Status::invalid_argument("credential is empty"));
        }
        if raw.len() > MAX_CREDENTIAL_LEN || !raw.is_ascii() {
            return Err(Status::unauthenticated("invalid credential"));
        }
        Ok(Credential(raw.to_owned()))
    }
}
