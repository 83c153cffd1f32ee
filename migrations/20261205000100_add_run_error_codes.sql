-- A failed run's error as a code and its parameters (JSON object), which the pages translate;
-- `error` keeps the English text. Runs that failed before have neither.
ALTER TABLE runs ADD COLUMN error_code TEXT;
ALTER TABLE runs ADD COLUMN error_params TEXT;
