-- Users, API keys and the audit log of the auth service (PostgreSQL).
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT,
    role          TEXT NOT NULL,
    disabled_at   BIGINT,
    created_at    BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id),
    name        TEXT NOT NULL,
    prefix      TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    scopes      TEXT NOT NULL,
    limits      TEXT,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT,
    revoked_at  BIGINT,
    grace_until BIGINT
);
CREATE INDEX api_keys_user_id ON api_keys (user_id);

CREATE TABLE audit_events (
    id             TEXT PRIMARY KEY,
    action         TEXT NOT NULL,
    actor_user_id  TEXT,
    target         TEXT,
    client_address TEXT,
    request_id     TEXT,
    at             BIGINT NOT NULL
);
CREATE INDEX audit_events_at ON audit_events (at);
