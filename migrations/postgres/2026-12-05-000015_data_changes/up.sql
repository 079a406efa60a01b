-- The change feed of the detection's input (src/db/changes.rs): every actor or resource inserted,
-- updated or deleted, tagged with the `data` version its statement bumped the counter to, in the
-- writer's own transaction. The counter's row lock, held from the bump to the commit, makes the
-- versions follow the commits: a reader that sees version V sees every change tagged V or less.
-- A server whose last build read version P reads the rows changed in (P, V] instead of every row.
-- Rows up to `data_changes_state.pruned_through` are deleted (`changes::prune`): a server whose
-- build is older reads every row. Changes made before this migration are not in the feed: the
-- horizon starts at the counter's value.
CREATE TABLE data_changes (
    version BIGINT NOT NULL,
    entity TEXT NOT NULL CHECK (entity IN ('actor', 'resource')),
    entity_id TEXT NOT NULL
);
CREATE INDEX data_changes_by_version ON data_changes (version);
-- `recording` is false only inside a bulk import's transaction (`changes::bulk_change`): its rows
-- are not recorded one by one, and it raises `pruned_through` to its own last version before it
-- commits, so every server reads every row after it.
CREATE TABLE data_changes_state (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    pruned_through BIGINT NOT NULL,
    recording BOOLEAN NOT NULL
);
INSERT INTO data_changes_state (id, pruned_through, recording)
    SELECT 1, version, TRUE FROM change_versions WHERE kind = 'data';

-- One statement trigger per event, reading the statement's rows from its transition table: the
-- bump (and the wake-up of migration `change_notify`), then the record of each row. Transition
-- tables are per event, hence two functions: rows as they are now, and rows as they were.
CREATE FUNCTION record_new_data() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bumped BIGINT;
BEGIN
    UPDATE change_versions SET version = version + 1 WHERE kind = 'data'
        RETURNING version INTO bumped;
    PERFORM pg_notify('symbiose_changes', 'data');
    INSERT INTO data_changes (version, entity, entity_id)
        SELECT bumped, TG_ARGV[0], id FROM changed_rows
        WHERE (SELECT recording FROM data_changes_state);
    RETURN NULL;
END
$$;
CREATE FUNCTION record_old_data() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bumped BIGINT;
BEGIN
    UPDATE change_versions SET version = version + 1 WHERE kind = 'data'
        RETURNING version INTO bumped;
    PERFORM pg_notify('symbiose_changes', 'data');
    INSERT INTO data_changes (version, entity, entity_id)
        SELECT bumped, TG_ARGV[0], id FROM removed_rows
        WHERE (SELECT recording FROM data_changes_state);
    RETURN NULL;
END
$$;

DROP TRIGGER actors_changed ON actors;
DROP TRIGGER resources_changed ON resources;
CREATE TRIGGER actors_inserted AFTER INSERT ON actors REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION record_new_data('actor');
CREATE TRIGGER actors_updated AFTER UPDATE ON actors REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION record_new_data('actor');
CREATE TRIGGER actors_deleted AFTER DELETE ON actors REFERENCING OLD TABLE AS removed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION record_old_data('actor');
CREATE TRIGGER resources_inserted AFTER INSERT ON resources REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION record_new_data('resource');
CREATE TRIGGER resources_updated AFTER UPDATE ON resources REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION record_new_data('resource');
CREATE TRIGGER resources_deleted AFTER DELETE ON resources REFERENCING OLD TABLE AS removed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION record_old_data('resource');
