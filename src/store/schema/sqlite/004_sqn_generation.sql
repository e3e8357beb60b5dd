-- 004_sqn_generation: SQNs committed without waiting for the disk (SQLite
-- dialect; the PostgreSQL file is the same tables).
--
-- The HSS process counts its starts in sqn_generation.gen (a flushed commit
-- at each start, which also flushes everything an earlier process left) and
-- records in impi.sqn_gen the start whose process last wrote the row's SQN.
-- A row written by an earlier start has its SEQ moved ahead by a margin per
-- start since (store_cx.c), so an SQN that was handed out and then lost in a
-- power cut is never handed out again (docs/internals/hss-store.md).
CREATE TABLE sqn_generation (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    gen INTEGER NOT NULL CHECK (gen >= 0)
);
INSERT INTO sqn_generation (id, gen) VALUES (1, 0);
ALTER TABLE impi ADD COLUMN sqn_gen INTEGER NOT NULL DEFAULT 0 CHECK (sqn_gen >= 0);
