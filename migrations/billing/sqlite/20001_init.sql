-- Credits ledger, balances and usage records of the billing service (SQLite).
-- Amounts are integers in hundredths of a credit (exact, rounded once).
CREATE TABLE accounts (
    user_id    TEXT PRIMARY KEY,
    balance    BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL
);

CREATE TABLE ledger_entries (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL,
    kind            TEXT NOT NULL,
    amount          BIGINT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    note            TEXT,
    actor_user_id   TEXT,
    balance_after   BIGINT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX ledger_entries_user_time ON ledger_entries (user_id, created_at);

CREATE TABLE usage_records (
    request_id    TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL,
    key_id        TEXT,
    model         TEXT NOT NULL,
    provider      TEXT,
    deployment    TEXT,
    operation     TEXT NOT NULL,
    input_tokens  BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cached_tokens BIGINT NOT NULL,
    credits       BIGINT NOT NULL,
    latency_ms    BIGINT NOT NULL,
    status        INTEGER NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX usage_records_user_time ON usage_records (user_id, created_at);
