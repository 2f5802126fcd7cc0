-- Activity retention by size (hardening): each event's stored size, summed when pruning.
ALTER TABLE activity ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
UPDATE activity SET size = length(CAST(data AS BLOB));
