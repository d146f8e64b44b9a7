-- The client's X-Request-Id on each usage record, to correlate usage with logs and traces.
ALTER TABLE usage_records ADD COLUMN client_request_id TEXT;
