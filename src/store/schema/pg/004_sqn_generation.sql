-- 004_sqn_generation: SQNs committed without waiting for the disk
-- (PostgreSQL dialect; the SQLite file is the same tables).
--
-- Only SQLite HSS processes move the generation: PostgreSQL commits are
-- durable when COMMIT returns, so there every row keeps the generation it
-- was inserted with and no SEQ is ever moved ahead.  The tables are here
-- so that both backends have one schema (store tests, export/import).
CREATE TABLE sqn_generation (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    gen BIGINT NOT NULL CHECK (gen >= 0)
);
INSERT INTO sqn_generation (id, gen) VALUES (1, 0);
ALTER TABLE impi ADD COLUMN sqn_gen BIGINT NOT NULL DEFAULT 0 CHECK (sqn_gen >= 0);
