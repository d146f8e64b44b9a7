-- Refresh tokens (rotated, single use, grouped in families for reuse
-- detection) and the indexes the login limiter and audit listing need.
CREATE TABLE refresh_tokens (
    id         TEXT PRIMARY KEY,
    family_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users(id),
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    revoked_at BIGINT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

CREATE INDEX audit_events_action_target_at ON audit_events (action, target, at);
CREATE INDEX audit_events_action_address_at ON audit_events (action, client_address, at);
