-- 003_roles: the local roles of a subscription (PostgreSQL dialect; the SQLite
-- file is the same column).
--
-- A comma list ("member,caller") the S-CSCF's policy gives the Digest/AKA
-- users of this subscription; '' = none kept, and the S-CSCF falls back to
-- its [scscf] local_roles. Sent to the S-CSCF in the SAA User-Data (an
-- Extension of the ServiceProfile, TS 29.228 Annex E). Bearer (Keystone)
-- users keep their token's roles.
ALTER TABLE subscription ADD COLUMN roles TEXT NOT NULL DEFAULT '';
