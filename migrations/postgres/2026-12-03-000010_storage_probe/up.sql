-- Always empty: /health/ready writes a page-sized row here and rolls it back, to learn whether the
-- database can still grow (a full disk must make the service not ready, not answer 500s).
CREATE TABLE storage_probe (id INTEGER PRIMARY KEY, filler TEXT NOT NULL);
