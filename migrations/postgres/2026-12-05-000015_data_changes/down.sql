DROP TRIGGER actors_inserted ON actors;
DROP TRIGGER actors_updated ON actors;
DROP TRIGGER actors_deleted ON actors;
DROP TRIGGER resources_inserted ON resources;
DROP TRIGGER resources_updated ON resources;
DROP TRIGGER resources_deleted ON resources;
DROP FUNCTION record_new_data();
DROP FUNCTION record_old_data();
CREATE TRIGGER actors_changed AFTER INSERT OR UPDATE OR DELETE ON actors
    FOR EACH STATEMENT EXECUTE FUNCTION bump_change_version('data');
CREATE TRIGGER resources_changed AFTER INSERT OR UPDATE OR DELETE ON resources
    FOR EACH STATEMENT EXECUTE FUNCTION bump_change_version('data');
DROP TABLE data_changes_state;
DROP TABLE data_changes;
