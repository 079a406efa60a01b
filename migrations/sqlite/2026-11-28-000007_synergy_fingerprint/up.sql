-- A 64-bit hash of each detected synergy's stored state (score, quantities, explanation…): re-detection
-- compares it instead of reading back every row's JSON detail, and rewrites only rows whose hash
-- changed. Existing rows start at 0, so the first detection after this migration rewrites them once.
ALTER TABLE synergies ADD COLUMN fingerprint BIGINT NOT NULL DEFAULT 0;
