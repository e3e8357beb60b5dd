-- tests/e2e/kamailio-ims: the tables ims_icscf reads at start (Debian's
-- examples/ims/icscf/icscf.sql, for db_sqlite). They stay empty: the HSS names
-- the S-CSCF (Server-Name) in every UAA and LIA.
CREATE TABLE s_cscf (
  id INTEGER PRIMARY KEY,
  name VARCHAR(83) NOT NULL DEFAULT '',
  s_cscf_uri VARCHAR(83) NOT NULL DEFAULT ''
);
CREATE TABLE s_cscf_capabilities (
  id INTEGER PRIMARY KEY,
  id_s_cscf INTEGER NOT NULL DEFAULT 0,
  capability INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE nds_trusted_domains (
  id INTEGER PRIMARY KEY,
  trusted_domain VARCHAR(83) NOT NULL DEFAULT ''
);
