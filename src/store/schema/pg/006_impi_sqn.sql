-- 006_impi_sqn: SQN_HE and its generation in a narrow table of their own
-- (PostgreSQL dialect; the SQLite file explains why).
CREATE TABLE impi_sqn (
    impi_id BIGINT PRIMARY KEY REFERENCES impi(id) ON DELETE CASCADE,
    sqn     BIGINT NOT NULL DEFAULT 0 CHECK (sqn BETWEEN 0 AND 281474976710655),
    sqn_gen BIGINT NOT NULL DEFAULT 0 CHECK (sqn_gen >= 0)
);
INSERT INTO impi_sqn (impi_id, sqn, sqn_gen) SELECT id, sqn, sqn_gen FROM impi;
ALTER TABLE impi DROP COLUMN sqn, DROP COLUMN sqn_gen;
