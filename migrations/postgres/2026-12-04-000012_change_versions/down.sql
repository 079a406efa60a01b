DROP TRIGGER actors_changed ON actors;
DROP TRIGGER resources_changed ON resources;
DROP TRIGGER synergies_changed ON synergies;
DROP TRIGGER api_keys_changed ON api_keys;
DROP FUNCTION bump_change_version();
DROP TABLE change_versions;
