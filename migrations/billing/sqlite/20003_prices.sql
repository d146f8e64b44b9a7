-- Price versions set by admins: each applies from its effective date, so a
-- change never rewrites past charges (those are stored as amounts).
CREATE TABLE prices (
    model                    TEXT NOT NULL,
    effective_from           BIGINT NOT NULL,
    input_per_million        TEXT NOT NULL,
    output_per_million       TEXT NOT NULL,
    cached_input_per_million TEXT,
    created_by               TEXT,
    created_at               BIGINT NOT NULL,
    PRIMARY KEY (model, effective_from)
);
