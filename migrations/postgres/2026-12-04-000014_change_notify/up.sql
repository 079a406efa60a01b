-- Every change counter bump also notifies the channel `symbiose_changes` with the kind of change
-- (src/db/notify.rs): delivered when the writer's transaction commits (and folded into one per kind
-- and transaction), it wakes the other servers' change followers at once; their polling remains the
-- fallback.
CREATE OR REPLACE FUNCTION bump_change_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE change_versions SET version = version + 1 WHERE kind = TG_ARGV[0];
    PERFORM pg_notify('symbiose_changes', TG_ARGV[0]);
    RETURN NULL;
END
$$;
