-- What changed, for every server on the database (src/db/changes.rs): one counter per kind of
-- change, bumped by triggers in the writer's own transaction, whatever wrote (API, CLI import,
-- another replica). `data`: actors and resources (the detection's input); `decisions`: stored
-- synergies (statuses, realised values); `keys`: API keys.
CREATE TABLE change_versions (
    kind TEXT PRIMARY KEY NOT NULL CHECK (kind IN ('data', 'decisions', 'keys')),
    version BIGINT NOT NULL
);
INSERT INTO change_versions (kind, version) VALUES ('data', 0), ('decisions', 0), ('keys', 0);

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
CREATE TRIGGER synergies_inserted AFTER INSERT ON synergies
BEGIN UPDATE change_versions SET version = version + 1 WHERE kind = 'decisions'; END;
CREATE TRIGGER synergies_updated AFTER UPDATE ON synergies
BEGIN UPDATE change_versions SET version = version + 1 WHERE kind = 'decisions'; END;
CREATE TRIGGER synergies_deleted AFTER DELETE ON synergies
BEGIN UPDATE change_versions SET version = version + 1 WHERE kind = 'decisions'; END;
CREATE TRIGGER api_keys_inserted AFTER INSERT ON api_keys
BEGIN UPDATE change_versions SET version = version + 1 WHERE kind = 'keys'; END;
CREATE TRIGGER api_keys_updated AFTER UPDATE ON api_keys
BEGIN UPDATE change_versions SET version = version + 1 WHERE kind = 'keys'; END;
CREATE TRIGGER api_keys_deleted AFTER DELETE ON api_keys
BEGIN UPDATE change_versions SET version = version + 1 WHERE kind = 'keys'; END;
