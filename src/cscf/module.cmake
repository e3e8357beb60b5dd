# cscf: the P-CSCF, I-CSCF and S-CSCF roles (docs/internals/cscf.md).
# table.c is the sharded store every role's shared state uses; registrar.c
# the location store, auth.c the S-CSCF's challenges, profile.c User-Data,
# cx_client.c Cx over the in-process HSS or Diameter, roles.c the wiring.
list(APPEND IMS_SOURCES
  src/cscf/table.c
  src/cscf/profile.c
  src/cscf/ifc.c
  src/cscf/thirdparty.c
  src/cscf/registrar.c
  src/cscf/reg_persist.c
  src/cscf/auth.c
  src/cscf/lockout.c
  src/cscf/cx_client.c
  src/cscf/sipx.c
  src/cscf/pcscf.c
  src/cscf/icscf.c
  src/cscf/scscf.c
  src/cscf/dereg.c
  src/cscf/regevent.c
  src/cscf/rtr.c
  src/cscf/session.c
  src/cscf/privacy.c
  src/cscf/bearer.c
  src/cscf/cdiv.c
  src/cscf/cscf_audit.c
  src/cscf/roles.c)
