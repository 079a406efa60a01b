ALTER TABLE synergies DROP COLUMN fingerprint;
