-- 007_cache_generation_profile: the change counter of 005 also counts the
-- provisioned data a SAA's User-Data is built from (SQLite dialect; the
-- PostgreSQL file has the same trigger columns).
--
-- The HSS keeps the User-Data it built for an IMPI and IMPU (with the
-- charging addresses and the associated IMPIs) in its identity cache, so a
-- re-registration's SAR does not build it again (src/hss/cx.c).  That copy
-- is used only under the gen it was built under: every change to what it is
-- built from must move gen.  005 covers identities and links; here the rest:
-- the subscription's columns but scscf_name (the Cx path writes it), an
-- IMPU's set, profile, barring and type (not reg_state: the Cx path writes
-- it), and the service profiles.  A later migration that adds a column the
-- User-Data shows adds it here too.
CREATE TRIGGER cache_gen_sub_data AFTER UPDATE OF ccf_primary, ccf_secondary, ecf_primary,
    ecf_secondary, keystone_user_id, keystone_project_id, roles ON subscription
BEGIN UPDATE cache_generation SET gen = gen + 1; END;

CREATE TRIGGER cache_gen_impu_data AFTER UPDATE OF irs, profile_id, barred, identity_type,
    wildcard ON impu
BEGIN UPDATE cache_generation SET gen = gen + 1; END;

CREATE TRIGGER cache_gen_profile_ins AFTER INSERT ON service_profile
BEGIN UPDATE cache_generation SET gen = gen + 1; END;
CREATE TRIGGER cache_gen_profile_del AFTER DELETE ON service_profile
BEGIN UPDATE cache_generation SET gen = gen + 1; END;
CREATE TRIGGER cache_gen_profile_upd AFTER UPDATE ON service_profile
BEGIN UPDATE cache_generation SET gen = gen + 1; END;
