-- The candidates deleted by up.sql are recomputed by the next detection: nothing to restore.
SELECT 1;
