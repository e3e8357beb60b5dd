/* store_sql.c - every statement the store runs, one table for both
 * backends.  Placeholders are '?' (the PostgreSQL driver numbers them), or
 * '?N' where one is used twice: then the .pg text spells them '$N'; the
 * .pg text replaces .sql where the dialects differ.  Column orders are
 * part of the contract with store*.c (see the *_COL enums and st_*_row). */
#include "store/store_int.h"

#define IMPI_COLS                                                                                  \
    "i.id, i.identity, s.name, i.realm, i.auth_schemes, i.amf, q.sqn, i.k_enc, i.opc_enc, "       \
    "i.ha1_md5_enc, i.ha1_sha256_enc, i.ha1_sha512_256_enc, i.password_enc "                       \
    "FROM impi i JOIN subscription s ON s.id = i.subscription_id "                                 \
    "JOIN impi_sqn q ON q.impi_id = i.id "

#define IMPU_COLS                                                                                  \
    "u.identity, s.name, COALESCE(p.name, ''), u.irs, u.identity_type, u.barred, u.reg_state, "    \
    "COALESCE(s.scscf_name, ''), u.id, s.id "                                                      \
    "FROM impu u JOIN subscription s ON s.id = u.subscription_id "                                 \
    "LEFT JOIN service_profile p ON p.id = u.profile_id "

#define SUB_COLS                                                                                   \
    "s.id, s.name, s.scscf_name, s.ccf_primary, s.ccf_secondary, s.ecf_primary, s.ecf_secondary, " \
    "s.keystone_user_id, s.keystone_project_id, s.roles FROM subscription s "

const struct store_sql store_sql[Q__N] = {
    [Q_MIG_VERSION] = { "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", NULL },
    [Q_MIG_INSERT] = { "INSERT INTO schema_migrations(version, name) VALUES (?, ?)", NULL },

    [Q_SUB_INSERT] = { "INSERT INTO subscription(name, ccf_primary, ccf_secondary, ecf_primary, "
                       "ecf_secondary, keystone_user_id, keystone_project_id, scscf_name, roles) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                       NULL },
    [Q_SUB_UPDATE] = { "UPDATE subscription SET ccf_primary = ?, ccf_secondary = ?, "
                       "ecf_primary = ?, ecf_secondary = ?, keystone_user_id = ?, "
                       "keystone_project_id = ?, roles = ? WHERE name = ? RETURNING id",
                       NULL },
    [Q_SUB_GET] = { "SELECT " SUB_COLS "WHERE s.name = ?", NULL },
    [Q_SUB_LIST] = { "SELECT " SUB_COLS "ORDER BY s.name", NULL },
    [Q_SUB_DELETE] = { "DELETE FROM subscription WHERE name = ?", NULL },
    [Q_SUB_OF_IMPU] = { "SELECT " SUB_COLS "JOIN impu u ON u.subscription_id = s.id "
                        "WHERE u.identity = ?",
                        NULL },
    /* Q_SUB_OF_IMPU, Q_IMPU_LIST_IRS and Q_SUB_IN_USE by the row ids of a
     * cached IMPU row: no search of the identity index */
    [Q_SUB_OF_IMPU_ID] = { "SELECT " SUB_COLS "WHERE s.id = ?", NULL },
    [Q_IMPU_LIST_SET] = { "SELECT " IMPU_COLS "WHERE u.subscription_id = ? AND u.irs = ?",
                          NULL },
    [Q_SUB_IN_USE_ID] = { "SELECT CASE WHEN EXISTS (SELECT 1 FROM impu WHERE "
                          "subscription_id = ? AND reg_state <> ?) THEN 1 ELSE 0 END",
                          NULL },
    [Q_SUB_SET_SCSCF] = { "UPDATE subscription SET scscf_name = ? WHERE id = "
                          "(SELECT subscription_id FROM impu WHERE identity = ?)",
                          NULL },
    /* the same, leaving the row alone when it holds that name already (a
     * SAR after the MAR stored it): no page to write */
    [Q_SUB_CHANGE_SCSCF] = { "UPDATE subscription SET scscf_name = ?1 WHERE id = "
                             "(SELECT subscription_id FROM impu WHERE identity = ?2) "
                             "AND scscf_name IS NOT ?1",
                             "UPDATE subscription SET scscf_name = $1 WHERE id = "
                             "(SELECT subscription_id FROM impu WHERE identity = $2) "
                             "AND scscf_name IS DISTINCT FROM $1" },
    /* the two above by the subscription's row id, which a cached IMPU row
     * holds (store_cx.c): no search of the identity index */
    [Q_SUB_SET_SCSCF_ID] = { "UPDATE subscription SET scscf_name = ? WHERE id = ?", NULL },
    [Q_SUB_CHANGE_SCSCF_ID] = { "UPDATE subscription SET scscf_name = ?1 WHERE id = ?2 "
                                "AND scscf_name IS NOT ?1",
                                "UPDATE subscription SET scscf_name = $1 WHERE id = $2 "
                                "AND scscf_name IS DISTINCT FROM $1" },
    [Q_SUBCAP_DELETE] = { "DELETE FROM subscription_capability WHERE subscription_id = ?", NULL },
    [Q_SUBCAP_INSERT] = { "INSERT INTO subscription_capability(subscription_id, capability, "
                          "mandatory) VALUES (?, ?, ?)",
                          NULL },
    /* unordered, as the Cx path's lists below: st_keep_sorted orders them */
    [Q_SUBCAP_LIST] = { "SELECT capability, mandatory FROM subscription_capability "
                        "WHERE subscription_id = ?",
                        NULL },

    /* each IMPI has its impi_sqn row (migration 006), inserted with it */
    [Q_IMPI_INSERT] = { "INSERT INTO impi(subscription_id, identity, realm, auth_schemes) "
                        "SELECT id, ?, ?, ? FROM subscription WHERE name = ?",
                        NULL },
    [Q_IMPI_IMPORT] = { "INSERT INTO impi(subscription_id, identity, realm, auth_schemes, amf, "
                        "k_enc, opc_enc, ha1_md5_enc, ha1_sha256_enc, ha1_sha512_256_enc, "
                        "password_enc) SELECT id, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? "
                        "FROM subscription WHERE name = ?",
                        NULL },
    /* a new row starts in the current SQN generation (store_int.h) */
    [Q_IMPI_SQN_INSERT] = { "INSERT INTO impi_sqn(impi_id, sqn, sqn_gen) SELECT id, ?, "
                            "(SELECT gen FROM sqn_generation) FROM impi WHERE identity = ?",
                            NULL },
    [Q_IMPI_GET] = { "SELECT " IMPI_COLS "WHERE i.identity = ?", NULL },
    [Q_IMPI_LIST_SUB] = { "SELECT " IMPI_COLS "WHERE s.name = ? ORDER BY i.identity", NULL },
    [Q_IMPI_LIST_ALL] = { "SELECT " IMPI_COLS "ORDER BY s.name, i.identity", NULL },
    [Q_IMPI_BATCH] = { "SELECT " IMPI_COLS "WHERE i.id > ? ORDER BY i.id LIMIT 100", NULL },
    [Q_IMPI_SET_SCHEMES] = { "UPDATE impi SET auth_schemes = ? WHERE identity = ?", NULL },
    [Q_IMPI_SET_AKA] = { "UPDATE impi SET k_enc = ?, opc_enc = ?, amf = ? WHERE identity = ?",
                         NULL },
    [Q_IMPI_SET_DIGEST] = { "UPDATE impi SET ha1_md5_enc = ?, ha1_sha256_enc = ?, "
                            "ha1_sha512_256_enc = ?, password_enc = ? WHERE identity = ?",
                            NULL },
    [Q_IMPI_SET_SECRETS] = { "UPDATE impi SET k_enc = ?, opc_enc = ?, ha1_md5_enc = ?, "
                             "ha1_sha256_enc = ?, ha1_sha512_256_enc = ?, password_enc = ? "
                             "WHERE id = ?",
                             NULL },
    [Q_IMPI_DELETE] = { "DELETE FROM impi WHERE identity = ?", NULL },
    /* The row lock that makes SQN allocation atomic across processes:
     * SQLite's BEGIN IMMEDIATE already holds the database write lock. */
    [Q_IMPI_SQN_LOCK] = { "SELECT q.sqn, q.sqn_gen, q.impi_id FROM impi_sqn q "
                          "JOIN impi i ON i.id = q.impi_id WHERE i.identity = ?",
                          "SELECT q.sqn, q.sqn_gen, q.impi_id FROM impi_sqn q "
                          "JOIN impi i ON i.id = q.impi_id WHERE i.identity = ? FOR UPDATE OF q" },
    /* the same by the IMPI's row id (from the identity cache) */
    [Q_IMPI_SQN_LOCK_ID] = { "SELECT sqn, sqn_gen, impi_id FROM impi_sqn WHERE impi_id = ?",
                             "SELECT sqn, sqn_gen, impi_id FROM impi_sqn WHERE impi_id = ? "
                             "FOR UPDATE" },
    [Q_IMPI_SQN_SET] = { "UPDATE impi_sqn SET sqn = ?, sqn_gen = ? WHERE impi_id = ?", NULL },
    [Q_SQN_GEN_BUMP] = { "UPDATE sqn_generation SET gen = gen + 1 WHERE id = 1 RETURNING gen",
                         NULL },
    [Q_KEY_USAGE] = { "SELECT "
                      "(SELECT COUNT(*) FROM impi WHERE k_enc LIKE ?) + "
                      "(SELECT COUNT(*) FROM impi WHERE opc_enc LIKE ?) + "
                      "(SELECT COUNT(*) FROM impi WHERE ha1_md5_enc LIKE ?) + "
                      "(SELECT COUNT(*) FROM impi WHERE ha1_sha256_enc LIKE ?) + "
                      "(SELECT COUNT(*) FROM impi WHERE ha1_sha512_256_enc LIKE ?) + "
                      "(SELECT COUNT(*) FROM impi WHERE password_enc LIKE ?)",
                      NULL },

    [Q_IMPU_INSERT] = { "INSERT INTO impu(subscription_id, identity, irs, profile_id, barred, "
                        "identity_type) SELECT s.id, ?, ?, "
                        "(SELECT id FROM service_profile WHERE name = ?), ?, ? "
                        "FROM subscription s WHERE s.name = ?",
                        NULL },
    [Q_IMPU_IMPORT] = { "INSERT INTO impu(subscription_id, identity, irs, profile_id, barred, "
                        "identity_type, reg_state) SELECT s.id, ?, ?, "
                        "(SELECT id FROM service_profile WHERE name = ?), ?, ?, ? "
                        "FROM subscription s WHERE s.name = ?",
                        NULL },
    [Q_IMPU_NEXT_IRS] = { "SELECT COALESCE(MAX(u.irs), 0) + 1 FROM impu u "
                          "JOIN subscription s ON s.id = u.subscription_id WHERE s.name = ?",
                          NULL },
    [Q_IMPU_GET] = { "SELECT " IMPU_COLS "WHERE u.identity = ?", NULL },
    /* what the Cx path writes, by the row ids a cached IMPU row holds */
    [Q_IMPU_STATE] = { "SELECT u.reg_state, COALESCE(s.scscf_name, '') FROM impu u "
                       "JOIN subscription s ON s.id = u.subscription_id "
                       "WHERE u.id = ? AND s.id = ?",
                       NULL },
    [Q_IMPU_UPDATE] = { "UPDATE impu SET irs = ?, profile_id = "
                        "(SELECT id FROM service_profile WHERE name = ?), barred = ?, "
                        "identity_type = ? WHERE identity = ?",
                        NULL },
    [Q_IMPU_BAR] = { "UPDATE impu SET barred = ? WHERE identity = ?", NULL },
    [Q_IMPU_SET_PROFILE] = { "UPDATE impu SET profile_id = "
                             "(SELECT id FROM service_profile WHERE name = ?) WHERE identity = ?",
                             NULL },
    [Q_IMPU_DELETE] = { "DELETE FROM impu WHERE identity = ?", NULL },
    [Q_IMPU_LIST_SUB] = { "SELECT " IMPU_COLS "WHERE s.name = ? ORDER BY u.irs, u.identity",
                          NULL },
    [Q_IMPU_LIST_ALL] = { "SELECT " IMPU_COLS "ORDER BY s.name, u.irs, u.identity", NULL },
    [Q_IMPU_LIST_IMPI] = { "SELECT " IMPU_COLS "JOIN impi_impu l ON l.impu_id = u.id "
                           "JOIN impi m ON m.id = l.impi_id WHERE m.identity = ?",
                           NULL },
    [Q_IMPU_LIST_IRS] = { "SELECT " IMPU_COLS "JOIN impu me ON me.subscription_id = "
                          "u.subscription_id AND me.irs = u.irs WHERE me.identity = ?",
                          NULL },
    /* only the rows that change: a re-registration writes no page */
    [Q_IMPU_REG_SET] = { "UPDATE impu SET reg_state = ?1 WHERE (subscription_id, irs) = "
                         "(SELECT subscription_id, irs FROM impu WHERE identity = ?2) "
                         "AND reg_state <> ?1",
                         "UPDATE impu SET reg_state = $1 WHERE (subscription_id, irs) = "
                         "(SELECT subscription_id, irs FROM impu WHERE identity = $2) "
                         "AND reg_state <> $1" },
    /* the same by the set's key, (subscription id, irs), from a cached row */
    [Q_IMPU_REG_SET_ID] = { "UPDATE impu SET reg_state = ?1 WHERE subscription_id = ?2 "
                            "AND irs = ?3 AND reg_state <> ?1",
                            "UPDATE impu SET reg_state = $1 WHERE subscription_id = $2 "
                            "AND irs = $3 AND reg_state <> $1" },
    [Q_IMPU_EXISTS] = { "SELECT 1 FROM impu WHERE identity = ?", NULL },

    [Q_LINK] = { "INSERT INTO impi_impu(impi_id, impu_id) SELECT m.id, u.id FROM impi m, impu u "
                 "WHERE m.identity = ? AND u.identity = ? AND m.subscription_id = "
                 "u.subscription_id ON CONFLICT DO NOTHING",
                 NULL },
    [Q_UNLINK] = { "DELETE FROM impi_impu WHERE impi_id = (SELECT id FROM impi WHERE identity = ?) "
                   "AND impu_id = (SELECT id FROM impu WHERE identity = ?)",
                   NULL },
    [Q_LINK_LIST_ALL] = { "SELECT m.identity, u.identity FROM impi_impu l "
                          "JOIN impi m ON m.id = l.impi_id JOIN impu u ON u.id = l.impu_id "
                          "ORDER BY m.identity, u.identity",
                          NULL },
    /* the associations ims_store_assoc_check finds OK, in pages (cache preload) */
    [Q_ASSOC_BATCH] = { "SELECT l.impi_id, l.impu_id, m.identity, u.identity FROM impi_impu l "
                        "JOIN impi m ON m.id = l.impi_id JOIN impu u ON u.id = l.impu_id "
                        "WHERE (l.impi_id, l.impu_id) > (?, ?) "
                        "AND m.subscription_id = u.subscription_id "
                        "ORDER BY l.impi_id, l.impu_id LIMIT 100",
                        NULL },
    /* impi id (or NULL), impu id (or NULL), same subscription, linked */
    [Q_ASSOC] = { "SELECT m.id, u.id, m.subscription_id = u.subscription_id, "
                  "CASE WHEN EXISTS (SELECT 1 FROM impi_impu l WHERE l.impi_id = m.id "
                  "AND l.impu_id = u.id) THEN 1 ELSE 0 END "
                  "FROM (SELECT 1 AS one) x "
                  "LEFT JOIN impi m ON m.identity = ? LEFT JOIN impu u ON u.identity = ?",
                  "SELECT m.id, u.id, CASE WHEN m.subscription_id = u.subscription_id "
                  "THEN 1 ELSE 0 END, "
                  "CASE WHEN EXISTS (SELECT 1 FROM impi_impu l WHERE l.impi_id = m.id "
                  "AND l.impu_id = u.id) THEN 1 ELSE 0 END "
                  "FROM (SELECT 1 AS one) x "
                  "LEFT JOIN impi m ON m.identity = ? LEFT JOIN impu u ON u.identity = ?" },
    [Q_IMPIS_OF_IMPU] = { "SELECT m.identity FROM impi m JOIN impi_impu l ON l.impi_id = m.id "
                          "JOIN impu u ON u.id = l.impu_id WHERE u.identity = ?",
                          NULL },
    /* one row, 1 or 0: the UAR's "kept by an S-CSCF" test without reading
     * (and copying) every IMPU of the subscription */
    [Q_SUB_IN_USE] = { "SELECT CASE WHEN EXISTS (SELECT 1 FROM impu u JOIN impu me "
                       "ON me.subscription_id = u.subscription_id WHERE me.identity = ? "
                       "AND u.reg_state <> ?) THEN 1 ELSE 0 END",
                       NULL },
    /* the identities only: the SAA's Associated-Identities (not IMPI_COLS,
     * whose ciphertexts and SQN join cost 2 % of a registration's CPU) */
    [Q_IMPIS_OF_SUB] = { "SELECT i.identity FROM impi i JOIN subscription s "
                         "ON s.id = i.subscription_id WHERE s.name = ?",
                         NULL },

    [Q_PROFILE_UPSERT] = { "INSERT INTO service_profile(name, ifc_xml) VALUES (?, ?) "
                           "ON CONFLICT (name) DO UPDATE SET ifc_xml = excluded.ifc_xml",
                           NULL },
    [Q_PROFILE_INSERT] = { "INSERT INTO service_profile(name, ifc_xml) VALUES (?, ?)", NULL },
    [Q_PROFILE_GET] = { "SELECT ifc_xml FROM service_profile WHERE name = ?", NULL },
    [Q_PROFILE_DELETE] = { "DELETE FROM service_profile WHERE name = ?", NULL },
    [Q_PROFILE_LIST] = { "SELECT p.name, (SELECT COUNT(*) FROM impu u WHERE u.profile_id = p.id) "
                         "FROM service_profile p ORDER BY p.name",
                         NULL },
    [Q_PROFILE_OF_IMPU] = { "SELECT COALESCE(p.name, ''), COALESCE(p.ifc_xml, '') FROM impu u "
                            "LEFT JOIN service_profile p ON p.id = u.profile_id "
                            "WHERE u.identity = ?",
                            NULL },

    [Q_SH_GET] = { "SELECT d.seq, d.data FROM sh_data d JOIN impu u ON u.id = d.impu_id "
                   "WHERE u.identity = ? AND d.service_indication = ?",
                   NULL },
    [Q_SH_LOCK] = { "SELECT d.seq FROM sh_data d JOIN impu u ON u.id = d.impu_id "
                    "WHERE u.identity = ? AND d.service_indication = ?",
                    "SELECT d.seq FROM sh_data d JOIN impu u ON u.id = d.impu_id "
                    "WHERE u.identity = ? AND d.service_indication = ? FOR UPDATE OF d" },
    [Q_SH_INSERT] = { "INSERT INTO sh_data(impu_id, service_indication, seq, data) "
                      "SELECT id, ?, ?, ? FROM impu WHERE identity = ?",
                      NULL },
    [Q_SH_UPDATE] = { "UPDATE sh_data SET seq = ?, data = ? WHERE impu_id = "
                      "(SELECT id FROM impu WHERE identity = ?) AND service_indication = ?",
                      NULL },
    [Q_SH_DELETE] = { "DELETE FROM sh_data WHERE impu_id = "
                      "(SELECT id FROM impu WHERE identity = ?) AND service_indication = ?",
                      NULL },
    [Q_SH_LIST_ALL] = { "SELECT u.identity, d.service_indication, d.seq, d.data FROM sh_data d "
                        "JOIN impu u ON u.id = d.impu_id ORDER BY u.identity, "
                        "d.service_indication",
                        NULL },

    [Q_SCSCF_UPSERT] = { "INSERT INTO scscf(name) VALUES (?) ON CONFLICT (name) DO NOTHING", NULL },
    [Q_SCSCF_INSERT] = { "INSERT INTO scscf(name) VALUES (?)", NULL },
    [Q_SCSCF_DELETE] = { "DELETE FROM scscf WHERE name = ?", NULL },
    [Q_SCSCF_CAP_DELETE] = { "DELETE FROM scscf_capability WHERE scscf_name = ?", NULL },
    [Q_SCSCF_CAP_INSERT] = { "INSERT INTO scscf_capability(scscf_name, capability) VALUES (?, ?)",
                             NULL },
    [Q_SCSCF_LIST] = { "SELECT s.name, c.capability FROM scscf s LEFT JOIN scscf_capability c "
                       "ON c.scscf_name = s.name ORDER BY s.name, c.capability",
                       NULL },

    /* store_ext.c: Server-Name -> Diameter identity (002_scscf_peer) */
    [Q_SCSCF_PEER_PUT] = { "INSERT INTO scscf_peer(name, host, realm) VALUES (?, ?, ?) "
                           "ON CONFLICT (name) DO UPDATE SET host = excluded.host, "
                           "realm = excluded.realm",
                           NULL },
    [Q_SCSCF_PEER_GET] = { "SELECT host, realm FROM scscf_peer WHERE name = ?", NULL },
    [Q_SCSCF_PEER_LIST] = { "SELECT name, host, realm FROM scscf_peer ORDER BY name", NULL },

    [Q_CACHE_GEN] = { "SELECT gen FROM cache_generation WHERE id = 1", NULL },
};
