-- Parked reports expire after a retention: found by their arrival time, and counted.
CREATE INDEX IF NOT EXISTS parked_by_received_at ON parked_reports (received_at);
INSERT INTO meta (key, value) VALUES ('parked_expired', 0) ON CONFLICT (key) DO NOTHING;
