-- What changed, for every server on the database (src/db/changes.rs): one counter per kind of
-- change, bumped by statement triggers in the writer's own transaction, whatever wrote (API, CLI
-- import, another replica). The counter's row lock orders the bumps as their transactions commit.
-- `data`: actors and resources (the detection's input); `decisions`: stored synergies (statuses,
-- realised values); `keys`: API keys.
CREATE TABLE change_versions (
    kind TEXT PRIMARY KEY NOT NULL CHECK (kind IN ('data', 'decisions', 'keys')),
    version BIGINT NOT NULL
);
INSERT INTO change_versions (kind, version) VALUES ('data', 0), ('decisions', 0), ('keys', 0);

CREATE FUNCTION bump_change_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE change_versions SET version = version + 1 WHERE kind = TG_ARGV[0];
    RETURN NULL;
END
$$;

CREATE TRIGGER actors_changed AFTER INSERT OR UPDATE OR DELETE ON actors
    FOR EACH STATEMENT EXECUTE FUNCTION bump_change_version('data');
CREATE TRIGGER resources_changed AFTER INSERT OR UPDATE OR DELETE ON resources
    FOR EACH STATEMENT EXECUTE FUNCTION bump_change_version('data');
-- Stored decisions bump per row, not per statement: a first decision's `INSERT … ON CONFLICT DO
-- NOTHING` that inserts nothing must not take the counter's lock before the synergy row's (the row,
-- then the counter, in every transaction: no deadlock between concurrent first decisions). Decisions
-- are few, so a row trigger costs little.
CREATE TRIGGER synergies_changed AFTER INSERT OR UPDATE OR DELETE ON synergies
    FOR EACH ROW EXECUTE FUNCTION bump_change_version('decisions');
CREATE TRIGGER api_keys_changed AFTER INSERT OR UPDATE OR DELETE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION bump_change_version('keys');
