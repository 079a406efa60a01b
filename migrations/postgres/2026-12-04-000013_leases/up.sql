-- Jobs that one server at a time must do (src/db/leases.rs): the server named in `holder` does the
-- job until `expires_at_ms` (milliseconds since 1970), renewing it while it runs; an expired lease
-- passes to the next server that asks. Today one job: announcing the synergies that enter or leave
-- the detection to webhook subscribers, which every replica computes.
CREATE TABLE leases (
    name TEXT PRIMARY KEY NOT NULL,
    holder TEXT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
