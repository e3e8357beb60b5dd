-- 002_scscf_peer: the Diameter identity of each S-CSCF (PostgreSQL dialect; the
-- SQLite file is the same table).
--
-- The HSS sends RTR and PPR (HSS-initiated procedures, TS 29.228 §6.1.3,
-- §6.2.2) to the S-CSCF that holds a user. The subscription stores its
-- Server-Name (a SIP URI); the Diameter identity comes from the Origin-Host of
-- that S-CSCF's MAR/SAR. Kept here so an HSS restart does not forget where to
-- send them. Not the scscf table: that one lists the S-CSCFs an I-CSCF may
-- select (capabilities), and a row there changes Server-Capabilities answers.
CREATE TABLE scscf_peer (
    name  TEXT PRIMARY KEY,   -- Server-Name (SIP URI), as in subscription.scscf_name
    host  TEXT NOT NULL,      -- Diameter identity (Origin-Host of its last MAR/SAR)
    realm TEXT NOT NULL       -- its Origin-Realm
);
