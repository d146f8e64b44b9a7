-- Retention deletes the oldest usage records first.
CREATE INDEX usage_records_created_at ON usage_records (created_at);
