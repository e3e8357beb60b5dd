# hss: the HSS role. auth.c (AKA/Digest core) is the store module's;
# cx.c/sh.c are the Cx/Sh/SLF handlers (pure functions over the store),
# userdata.c the XML documents, hss.c the role wiring and admin procedures.
list(APPEND IMS_SOURCES
  src/hss/auth.c
  src/hss/cx.c
  src/hss/sh.c
  src/hss/userdata.c
  src/hss/ks_creds.c
  src/hss/hss.c
  src/hss/role.c)
