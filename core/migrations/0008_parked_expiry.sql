-- Parked reports expire after a retention: found by their arrival time, and counted.
CREATE INDEX IF NOT EXISTS parked_by_received_at ON parked_reports (received_at);
INSERT OR IGNORE INTO meta (key, value) VALUES ('parked_expired', 0);
