# audit: the tamper-evident CADF audit trail (docs/audit.md): events,
# sealing and the writer thread (audit.c), the verifier (audit_verify.c).
list(APPEND IMS_SOURCES
  src/audit/audit.c
  src/audit/audit_verify.c
  src/audit/audit_srv.c)
