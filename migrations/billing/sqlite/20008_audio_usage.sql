-- Audio usage (issue 6): each usage record keeps the characters synthesised
-- (text-to-speech) and the milliseconds of audio transcribed (speech-to-text)
-- it was charged for, next to its tokens, and the daily rollups sum them like
-- the tokens. Records and rollups written before this migration stored no
-- audio usage: they read 0, and are not backfilled (their charges are right,
-- only the units are unknown).
ALTER TABLE usage_records ADD COLUMN characters BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_records ADD COLUMN audio_millis BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_daily ADD COLUMN characters BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_daily ADD COLUMN audio_millis BIGINT NOT NULL DEFAULT 0;
