-- First successful request and first top-up of each account, for the
-- activation funnel metrics (set once).
ALTER TABLE accounts ADD COLUMN first_request_at BIGINT;
ALTER TABLE accounts ADD COLUMN first_top_up_at BIGINT;
