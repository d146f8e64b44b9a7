-- Daily rollups of usage records: one row per user, UTC day, model and key,
-- updated in the settlement's transaction. Reports over whole days read them,
-- and they outlive the retention that prunes the raw records.
CREATE TABLE usage_daily (
    user_id       TEXT NOT NULL,
    day           BIGINT NOT NULL,
    model         TEXT NOT NULL,
    key_id        TEXT NOT NULL,
    requests      BIGINT NOT NULL,
    input_tokens  BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cached_tokens BIGINT NOT NULL,
    credits       BIGINT NOT NULL,
    PRIMARY KEY (user_id, day, model, key_id)
);

INSERT INTO usage_daily (user_id, day, model, key_id, requests, input_tokens, output_tokens, cached_tokens, credits)
SELECT user_id, created_at / 86400000, model, COALESCE(key_id, ''), COUNT(*),
       SUM(input_tokens), SUM(output_tokens), SUM(cached_tokens), SUM(credits)
FROM usage_records
GROUP BY user_id, created_at / 86400000, model, COALESCE(key_id, '');
