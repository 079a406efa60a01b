DROP TRIGGER actors_inserted;
DROP TRIGGER actors_updated;
DROP TRIGGER actors_deleted;
DROP TRIGGER resources_inserted;
DROP TRIGGER resources_updated;
DROP TRIGGER resources_deleted;
CREATE TRIGGER actors_inserted AFTER INSERT ON actors
BEGIN UPDATE change_versions SET version = version + 1 WHERE kind = 'data'; END;
CREATE TRIGGER actors_updated AFTER UPDATE ON actors
BEGIN UPDATE change_versions SET version = version + 1 WHERE kind = 'data'; END;
CREATE TRIGGER actors_deleted AFTER DELETE ON actors
BEGIN UPDATE change_versions SET version = version + 1 WHERE kind = 'data'; END;
CREATE TRIGGER resources_inserted AFTER INSERT ON resources
BEGIN UPDATE change_versions SET version = version + 1 WHERE kind = 'data'; END;
CREATE TRIGGER resources_updated AFTER UPDATE ON resources
BEGIN UPDATE change_versions SET version = version + 1 WHERE kind = 'data'; END;
CREATE TRIGGER resources_deleted AFTER DELETE ON resources
BEGIN UPDATE change_versions SET version = version + 1 WHERE kind = 'data'; END;
DROP TABLE data_changes_state;
DROP TABLE data_changes;
