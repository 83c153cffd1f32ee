-- How far a waiting step is: `done` of `total` (nodes Ready, pods gone...), what is counted and
-- what holds it (a PodDisruptionBudget), so that a reload shows the same bar. NULL: no count.
ALTER TABLE run_steps ADD COLUMN progress_done INTEGER;
ALTER TABLE run_steps ADD COLUMN progress_total INTEGER;
ALTER TABLE run_steps ADD COLUMN progress_unit TEXT;
ALTER TABLE run_steps ADD COLUMN progress_note TEXT;
