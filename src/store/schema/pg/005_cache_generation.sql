-- 005_cache_generation: a change counter for the HSS's in-memory cache of
-- identity data (PostgreSQL dialect; the SQLite file explains it).  Here
-- the triggers run once per statement.
CREATE TABLE cache_generation (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    gen BIGINT NOT NULL
);
INSERT INTO cache_generation (id, gen) VALUES (1, 0);

CREATE FUNCTION cache_generation_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE cache_generation SET gen = gen + 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER cache_gen_sub AFTER INSERT OR DELETE OR UPDATE OF id, name ON subscription
    FOR EACH STATEMENT EXECUTE FUNCTION cache_generation_bump();
CREATE TRIGGER cache_gen_impi AFTER INSERT OR DELETE OR UPDATE OF id, subscription_id,
    identity, realm, auth_schemes, amf, k_enc, opc_enc, ha1_md5_enc, ha1_sha256_enc,
    ha1_sha512_256_enc, password_enc ON impi
    FOR EACH STATEMENT EXECUTE FUNCTION cache_generation_bump();
CREATE TRIGGER cache_gen_impu AFTER INSERT OR DELETE OR UPDATE OF id, subscription_id,
    identity ON impu
    FOR EACH STATEMENT EXECUTE FUNCTION cache_generation_bump();
CREATE TRIGGER cache_gen_link AFTER INSERT OR DELETE OR UPDATE ON impi_impu
    FOR EACH STATEMENT EXECUTE FUNCTION cache_generation_bump();
