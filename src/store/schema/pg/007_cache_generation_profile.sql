-- 007_cache_generation_profile: the change counter of 005 also counts the
-- provisioned data a SAA's User-Data is built from (PostgreSQL dialect; the
-- SQLite file explains it).  Statement triggers, as in 005.
CREATE TRIGGER cache_gen_sub_data AFTER UPDATE OF ccf_primary, ccf_secondary, ecf_primary,
    ecf_secondary, keystone_user_id, keystone_project_id, roles ON subscription
    FOR EACH STATEMENT EXECUTE FUNCTION cache_generation_bump();
CREATE TRIGGER cache_gen_impu_data AFTER UPDATE OF irs, profile_id, barred, identity_type,
    wildcard ON impu
    FOR EACH STATEMENT EXECUTE FUNCTION cache_generation_bump();
CREATE TRIGGER cache_gen_profile AFTER INSERT OR DELETE OR UPDATE ON service_profile
    FOR EACH STATEMENT EXECUTE FUNCTION cache_generation_bump();
