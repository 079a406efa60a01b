DROP TABLE synergy_notes;
DROP TABLE synergy_history;
ALTER TABLE synergies DROP COLUMN realised_co2e_t;
ALTER TABLE synergies DROP COLUMN realised_diverted_t;
ALTER TABLE synergies DROP COLUMN realised_quantity;
ALTER TABLE synergies DROP COLUMN status_changed_at;
ALTER TABLE synergies DROP COLUMN status_reason;
