-- The change feed of the detection's input (src/db/changes.rs): every actor or resource inserted,
-- updated or deleted, tagged with the `data` version its change bumped the counter to, in the
-- writer's own transaction. A server whose last build read version P reads the rows changed in
-- (P, V] instead of every row. Rows up to `data_changes_state.pruned_through` are deleted
-- (`changes::prune`): a server whose build is older reads every row. Changes made before this
-- migration are not in the feed: the horizon starts at the counter's value.
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

-- The counter's triggers (migration `change_versions`) also record the row: one trigger per event,
-- the bump then the record, in that order.
DROP TRIGGER actors_inserted;
DROP TRIGGER actors_updated;
DROP TRIGGER actors_deleted;
DROP TRIGGER resources_inserted;
DROP TRIGGER resources_updated;
DROP TRIGGER resources_deleted;
CREATE TRIGGER actors_inserted AFTER INSERT ON actors BEGIN
    UPDATE change_versions SET version = version + 1 WHERE kind = 'data';
    INSERT INTO data_changes (version, entity, entity_id)
        SELECT c.version, 'actor', NEW.id FROM change_versions c, data_changes_state s
        WHERE c.kind = 'data' AND s.recording;
END;
CREATE TRIGGER actors_updated AFTER UPDATE ON actors BEGIN
    UPDATE change_versions SET version = version + 1 WHERE kind = 'data';
    INSERT INTO data_changes (version, entity, entity_id)
        SELECT c.version, 'actor', NEW.id FROM change_versions c, data_changes_state s
        WHERE c.kind = 'data' AND s.recording;
END;
CREATE TRIGGER actors_deleted AFTER DELETE ON actors BEGIN
    UPDATE change_versions SET version = version + 1 WHERE kind = 'data';
    INSERT INTO data_changes (version, entity, entity_id)
        SELECT c.version, 'actor', OLD.id FROM change_versions c, data_changes_state s
        WHERE c.kind = 'data' AND s.recording;
END;
CREATE TRIGGER resources_inserted AFTER INSERT ON resources BEGIN
    UPDATE change_versions SET version = version + 1 WHERE kind = 'data';
    INSERT INTO data_changes (version, entity, entity_id)
        SELECT c.version, 'resource', NEW.id FROM change_versions c, data_changes_state s
        WHERE c.kind = 'data' AND s.recording;
END;
CREATE TRIGGER resources_updated AFTER UPDATE ON resources BEGIN
    UPDATE change_versions SET version = version + 1 WHERE kind = 'data';
    INSERT INTO data_changes (version, entity, entity_id)
        SELECT c.version, 'resource', NEW.id FROM change_versions c, data_changes_state s
        WHERE c.kind = 'data' AND s.recording;
END;
CREATE TRIGGER resources_deleted AFTER DELETE ON resources BEGIN
    UPDATE change_versions SET version = version + 1 WHERE kind = 'data';
    INSERT INTO data_changes (version, entity, entity_id)
        SELECT c.version, 'resource', OLD.id FROM change_versions c, data_changes_state s
        WHERE c.kind = 'data' AND s.recording;
END;
