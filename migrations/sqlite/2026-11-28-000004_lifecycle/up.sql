-- Synergy lifecycle: the status a facilitator set, why and when, the realised quantities and
-- impacts once implemented, every status change (history) and free notes.
-- Statuses: detected, proposed, in_study, implemented, rejected, abandoned (src/domain/lifecycle.rs).
-- Re-detection (src/db/synergies.rs::persist_detection) never writes these columns.
ALTER TABLE synergies ADD COLUMN status_reason TEXT;
ALTER TABLE synergies ADD COLUMN status_changed_at TIMESTAMP;
ALTER TABLE synergies ADD COLUMN realised_quantity DOUBLE CHECK (realised_quantity >= 0);
ALTER TABLE synergies ADD COLUMN realised_diverted_t DOUBLE CHECK (realised_diverted_t >= 0);
ALTER TABLE synergies ADD COLUMN realised_co2e_t DOUBLE CHECK (realised_co2e_t >= 0);

-- One row per status change, written in the same transaction as the change itself.
CREATE TABLE synergy_history (
    id TEXT PRIMARY KEY NOT NULL,
    synergy_id TEXT NOT NULL REFERENCES synergies(id) ON DELETE CASCADE,
    changed_by TEXT NOT NULL,
    changed_at TIMESTAMP NOT NULL,
    from_status TEXT NOT NULL
        CHECK (from_status IN ('detected', 'proposed', 'in_study', 'implemented', 'rejected', 'abandoned')),
    to_status TEXT NOT NULL
        CHECK (to_status IN ('detected', 'proposed', 'in_study', 'implemented', 'rejected', 'abandoned')),
    comment TEXT,
    reason TEXT
);
CREATE INDEX synergy_history_by_synergy ON synergy_history(synergy_id, changed_at);

-- Free notes of facilitators on a synergy.
CREATE TABLE synergy_notes (
    id TEXT PRIMARY KEY NOT NULL,
    synergy_id TEXT NOT NULL REFERENCES synergies(id) ON DELETE CASCADE,
    author TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX synergy_notes_by_synergy ON synergy_notes(synergy_id, created_at);
