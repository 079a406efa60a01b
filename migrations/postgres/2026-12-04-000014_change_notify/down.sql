CREATE OR REPLACE FUNCTION bump_change_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE change_versions SET version = version + 1 WHERE kind = TG_ARGV[0];
    RETURN NULL;
END
$$;
