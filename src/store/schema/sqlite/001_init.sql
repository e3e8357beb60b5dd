-- 001_init: the subscriber data model (TS 23.228 §5, TS 29.228 Annex B).
-- SQLite dialect; schema/pg/001_init.sql is the same model for PostgreSQL.
-- Secrets (*_enc) hold keyrepo ciphertexts "v1:<keyid>:<base64>", never
-- plaintext. Booleans are 0/1 integers in both dialects.

-- An IMS subscription: the unit that is assigned to one S-CSCF.
CREATE TABLE subscription (
    id                  INTEGER PRIMARY KEY,
    name                TEXT NOT NULL UNIQUE,
    scscf_name          TEXT,           -- assigned S-CSCF (SIP URI), NULL when none
    ccf_primary         TEXT,           -- TS 29.228 Charging-Information (Diameter URIs)
    ccf_secondary       TEXT,
    ecf_primary         TEXT,
    ecf_secondary       TEXT,
    keystone_user_id    TEXT,           -- optional link to a Keystone user and project
    keystone_project_id TEXT
);

-- Server-Capabilities (TS 29.228 §6.7) the subscription needs.
CREATE TABLE subscription_capability (
    subscription_id INTEGER NOT NULL REFERENCES subscription(id) ON DELETE CASCADE,
    capability      INTEGER NOT NULL CHECK (capability BETWEEN 0 AND 4294967295),
    mandatory       INTEGER NOT NULL CHECK (mandatory IN (0, 1)),
    PRIMARY KEY (subscription_id, capability)
);

-- Private user identities (IMPI) and their authentication data.
CREATE TABLE impi (
    id                 INTEGER PRIMARY KEY,
    subscription_id    INTEGER NOT NULL REFERENCES subscription(id) ON DELETE CASCADE,
    identity           TEXT NOT NULL UNIQUE,
    realm              TEXT NOT NULL,       -- the Digest realm the HA1s are computed for
    auth_schemes       INTEGER NOT NULL DEFAULT 0,  -- bit set, enum ims_auth_scheme
    amf                INTEGER NOT NULL DEFAULT 32768 CHECK (amf BETWEEN 0 AND 65535),
    sqn                INTEGER NOT NULL DEFAULT 0 CHECK (sqn BETWEEN 0 AND 281474976710655),
    k_enc              TEXT,                -- AKA: K
    opc_enc            TEXT,                -- AKA: OPc
    ha1_md5_enc        TEXT,                -- Digest: HA1 per algorithm (hex)
    ha1_sha256_enc     TEXT,
    ha1_sha512_256_enc TEXT,
    password_enc       TEXT                 -- only when the operator keeps it
);
CREATE INDEX impi_subscription ON impi(subscription_id);

-- Service profiles: the TS 29.228 ServiceProfile content other than the
-- PublicIdentity elements (InitialFilterCriteria, CoreNetworkServicesAuthorization,
-- Extension), as XML text.
CREATE TABLE service_profile (
    id      INTEGER PRIMARY KEY,
    name    TEXT NOT NULL UNIQUE,
    ifc_xml TEXT NOT NULL DEFAULT ''
);

-- Public user identities (IMPU), sip: or tel: URIs, and PSIs.
CREATE TABLE impu (
    id              INTEGER PRIMARY KEY,
    subscription_id INTEGER NOT NULL REFERENCES subscription(id) ON DELETE CASCADE,
    identity        TEXT NOT NULL UNIQUE,
    irs             INTEGER NOT NULL CHECK (irs > 0),  -- implicit registration set, per subscription
    profile_id      INTEGER REFERENCES service_profile(id) ON DELETE RESTRICT,
    barred          INTEGER NOT NULL DEFAULT 0 CHECK (barred IN (0, 1)),
    identity_type   INTEGER NOT NULL DEFAULT 0 CHECK (identity_type BETWEEN 0 AND 3),
    wildcard        TEXT,                -- pattern of a wildcarded identity (types 2, 3; later)
    reg_state       INTEGER NOT NULL DEFAULT 0 CHECK (reg_state IN (0, 1, 2))
);
CREATE INDEX impu_irs ON impu(subscription_id, irs);
CREATE INDEX impu_profile ON impu(profile_id);

-- Which IMPIs may use which IMPUs (an IMPU may be shared, TS 23.228 §4.3.3.4).
CREATE TABLE impi_impu (
    impi_id INTEGER NOT NULL REFERENCES impi(id) ON DELETE CASCADE,
    impu_id INTEGER NOT NULL REFERENCES impu(id) ON DELETE CASCADE,
    PRIMARY KEY (impi_id, impu_id)
);
CREATE INDEX impi_impu_impu ON impi_impu(impu_id);

-- Sh repository data (TS 29.328 §7.6 Sequence-Number, Service-Indication).
CREATE TABLE sh_data (
    impu_id            INTEGER NOT NULL REFERENCES impu(id) ON DELETE CASCADE,
    service_indication TEXT NOT NULL,
    seq                INTEGER NOT NULL CHECK (seq BETWEEN 0 AND 65535),
    data               TEXT NOT NULL,
    PRIMARY KEY (impu_id, service_indication)
);

-- S-CSCFs and the capabilities each offers (for the I-CSCF's selection).
CREATE TABLE scscf (
    name TEXT PRIMARY KEY
);
CREATE TABLE scscf_capability (
    scscf_name TEXT NOT NULL REFERENCES scscf(name) ON DELETE CASCADE,
    capability INTEGER NOT NULL CHECK (capability BETWEEN 0 AND 4294967295),
    PRIMARY KEY (scscf_name, capability)
);
