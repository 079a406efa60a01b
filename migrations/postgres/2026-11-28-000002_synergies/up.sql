-- Detected synergies. The id is stable (UUID v5 of the offer/need pair, or of the pooling key and
-- members), so statuses set by facilitators survive re-detection. No foreign keys to resources:
-- a synergy whose resource is deleted is retired, not erased, so its history stays.
CREATE TABLE synergies (
    id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('substitution', 'pooling')),
    offer_id TEXT,
    need_id TEXT,
    provider_actor_id TEXT,
    receiver_actor_id TEXT,
    class TEXT NOT NULL,
    ewc_code TEXT,
    latent BOOLEAN NOT NULL DEFAULT FALSE,
    score DOUBLE PRECISION NOT NULL,
    distance_km DOUBLE PRECISION,
    quantity DOUBLE PRECISION,
    base_unit TEXT,
    detail TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'detected',
    active BOOLEAN NOT NULL DEFAULT TRUE,
    first_detected_at TIMESTAMP NOT NULL,
    last_detected_at TIMESTAMP NOT NULL,
    retired_at TIMESTAMP
);
CREATE INDEX synergies_by_score ON synergies(active, score);
CREATE INDEX synergies_by_provider ON synergies(provider_actor_id);
CREATE INDEX synergies_by_receiver ON synergies(receiver_actor_id);
CREATE INDEX synergies_by_offer ON synergies(offer_id);
CREATE INDEX synergies_by_need ON synergies(need_id);
