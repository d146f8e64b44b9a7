-- Audio prices (issue 6): text-to-speech per 1M characters, speech-to-text per
-- minute of audio (billed by the millisecond). Decimal text like the other
-- prices; NULL means the model has no price in that unit, so usage in it is
-- refused as not priced. Versions stored before this migration have neither.
ALTER TABLE prices ADD COLUMN per_million_characters TEXT;
ALTER TABLE prices ADD COLUMN per_minute_audio TEXT;
