-- 006_impi_sqn: SQN_HE and its generation move out of the impi row into a
-- narrow table of their own (SQLite dialect; the PostgreSQL file is the
-- same table).
--
-- Every AKA MAR writes the SQN.  In the wide impi row (secrets, realm,
-- schemes) each write dirtied a page holding a handful of subscribers, so
-- the WAL and its checkpoints copied a different 4 KiB page for almost every
-- vector.  A row here is about 20 bytes: a page holds ~200 subscribers, the
-- table stays in the page cache, and a checkpoint copies each page once for
-- many writes.  The impi row is then only read on the Cx path (and cached,
-- store_cache.h).
CREATE TABLE impi_sqn (
    impi_id INTEGER PRIMARY KEY REFERENCES impi(id) ON DELETE CASCADE,
    sqn     INTEGER NOT NULL DEFAULT 0 CHECK (sqn BETWEEN 0 AND 281474976710655),
    sqn_gen INTEGER NOT NULL DEFAULT 0 CHECK (sqn_gen >= 0)
);
INSERT INTO impi_sqn (impi_id, sqn, sqn_gen) SELECT id, sqn, sqn_gen FROM impi;
ALTER TABLE impi DROP COLUMN sqn;
ALTER TABLE impi DROP COLUMN sqn_gen;
