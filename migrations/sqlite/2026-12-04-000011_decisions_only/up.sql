-- The synergies table keeps decisions, not candidates: candidates live in the server's memory
-- (src/detection.rs) and a synergy is stored on its first decision (src/db/lifecycle.rs). Rows
-- that earlier versions stored for every candidate, and that nobody decided anything about, go.
DELETE FROM synergies
WHERE status = 'detected'
  AND status_changed_at IS NULL
  AND realised_quantity IS NULL
  AND realised_diverted_t IS NULL
  AND realised_co2e_t IS NULL
  AND NOT EXISTS (SELECT 1 FROM synergy_history h WHERE h.synergy_id = synergies.id)
  AND NOT EXISTS (SELECT 1 FROM synergy_notes n WHERE n.synergy_id = synergies.id);
