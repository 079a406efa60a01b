-- Partner webhooks: subscriptions, events waiting to be fanned out, the per-subscription outbox and
-- every delivery attempt (src/webhooks/, docs/WEBHOOKS.md).
-- An event is written in the same transaction as the change it reports (`webhook_events`); the
-- delivery worker fans it out into `webhook_outbox`, one row per subscription with a sequence number
-- that is strictly increasing per subscription, and delivers each subscription's rows in that order.

CREATE TABLE webhook_subscriptions (
    id TEXT PRIMARY KEY NOT NULL,
    -- The API key that owns it (api_keys.id); its scope is copied below at creation.
    key_id TEXT NOT NULL,
    url TEXT NOT NULL,
    -- JSON array of event types.
    events TEXT NOT NULL,
    -- The HMAC-SHA256 signing secret, shown once at creation.
    secret TEXT NOT NULL,
    -- JSON array of territory codes of the owner key; empty = national.
    territories TEXT NOT NULL,
    -- The owner is a partner: payloads are anonymised for actors that did not consent.
    anonymise BOOLEAN NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'paused')),
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    paused_reason TEXT,
    paused_at TIMESTAMP,
    -- The sequence number the next outbox row of this subscription gets.
    next_seq BIGINT NOT NULL DEFAULT 1,
    -- One worker at a time delivers a subscription (ordering): it holds the lease until then.
    lease_owner TEXT,
    lease_until TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX webhook_subscriptions_by_key ON webhook_subscriptions(key_id, created_at);

-- Events recorded with the change that caused them, waiting for the worker to fan them out.
CREATE TABLE webhook_events (
    id TEXT PRIMARY KEY NOT NULL,
    event_type TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    -- JSON: the event's `data`, before any anonymisation.
    data TEXT NOT NULL,
    -- JSON array of the INSEE communes of the actors involved (territory filter).
    communes TEXT NOT NULL,
    -- Set for events meant for one subscription only (`ping`).
    subscription_id TEXT
);
CREATE INDEX webhook_events_by_time ON webhook_events(created_at, id);

-- One row per (event, subscription), with the body as sent.
CREATE TABLE webhook_outbox (
    id TEXT PRIMARY KEY NOT NULL,
    subscription_id TEXT NOT NULL REFERENCES webhook_subscriptions(id) ON DELETE CASCADE,
    event_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'expired')),
    next_attempt_at TIMESTAMP NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    delivered_at TIMESTAMP,
    expired_at TIMESTAMP,
    last_error TEXT,
    UNIQUE (subscription_id, seq),
    UNIQUE (subscription_id, event_id)
);
CREATE INDEX webhook_outbox_pending ON webhook_outbox(state, subscription_id, seq);

-- Every delivery attempt: when, how long, the HTTP status or the error.
CREATE TABLE webhook_attempts (
    id TEXT PRIMARY KEY NOT NULL,
    outbox_id TEXT NOT NULL REFERENCES webhook_outbox(id) ON DELETE CASCADE,
    attempted_at TIMESTAMP NOT NULL,
    http_status INTEGER,
    error TEXT,
    duration_ms BIGINT NOT NULL,
    success BOOLEAN NOT NULL
);
CREATE INDEX webhook_attempts_by_outbox ON webhook_attempts(outbox_id, attempted_at);
