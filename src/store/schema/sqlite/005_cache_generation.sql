-- 005_cache_generation: a change counter for the HSS's in-memory cache of
-- identity data (SQLite dialect; the PostgreSQL file is the same table and
-- the same trigger columns).
--
-- Every change to what the cache holds (identities, their links, the
-- authentication columns of an IMPI) adds one to cache_generation.gen, in
-- the same transaction, whichever process or tool makes it (imscloudctl
-- writes the file directly).  The HSS reads gen once per request and uses a
-- cached entry only when it was read under that gen (src/store/store_cache.h).
-- The columns the Cx path itself writes on every request (impi.sqn,
-- impi.sqn_gen, impu.reg_state, subscription.scscf_name) are left out: the
-- cache never holds them.
CREATE TABLE cache_generation (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    gen INTEGER NOT NULL
);
INSERT INTO cache_generation (id, gen) VALUES (1, 0);

CREATE TRIGGER cache_gen_sub_ins AFTER INSERT ON subscription
BEGIN UPDATE cache_generation SET gen = gen + 1; END;
CREATE TRIGGER cache_gen_sub_del AFTER DELETE ON subscription
BEGIN UPDATE cache_generation SET gen = gen + 1; END;
CREATE TRIGGER cache_gen_sub_upd AFTER UPDATE OF id, name ON subscription
BEGIN UPDATE cache_generation SET gen = gen + 1; END;

CREATE TRIGGER cache_gen_impi_ins AFTER INSERT ON impi
BEGIN UPDATE cache_generation SET gen = gen + 1; END;
CREATE TRIGGER cache_gen_impi_del AFTER DELETE ON impi
BEGIN UPDATE cache_generation SET gen = gen + 1; END;
CREATE TRIGGER cache_gen_impi_upd AFTER UPDATE OF id, subscription_id, identity, realm,
    auth_schemes, amf, k_enc, opc_enc, ha1_md5_enc, ha1_sha256_enc, ha1_sha512_256_enc,
    password_enc ON impi
BEGIN UPDATE cache_generation SET gen = gen + 1; END;

CREATE TRIGGER cache_gen_impu_ins AFTER INSERT ON impu
BEGIN UPDATE cache_generation SET gen = gen + 1; END;
CREATE TRIGGER cache_gen_impu_del AFTER DELETE ON impu
BEGIN UPDATE cache_generation SET gen = gen + 1; END;
CREATE TRIGGER cache_gen_impu_upd AFTER UPDATE OF id, subscription_id, identity ON impu
BEGIN UPDATE cache_generation SET gen = gen + 1; END;

CREATE TRIGGER cache_gen_link_ins AFTER INSERT ON impi_impu
BEGIN UPDATE cache_generation SET gen = gen + 1; END;
CREATE TRIGGER cache_gen_link_del AFTER DELETE ON impi_impu
BEGIN UPDATE cache_generation SET gen = gen + 1; END;
CREATE TRIGGER cache_gen_link_upd AFTER UPDATE ON impi_impu
BEGIN UPDATE cache_generation SET gen = gen + 1; END;
