# cloudas: the cloud application server, role `as` (docs/cloud-as.md,
# docs/internals/cloudas.md): SIP MESSAGE commands acting on OpenStack with
# the user's own Keystone identity.  Uses src/http (libcurl) and jansson.
list(APPEND IMS_SOURCES
  src/cloudas/cloudas.c
  src/cloudas/cas_cmd.c
  src/cloudas/cas_job.c
  src/cloudas/cas_sub.c)
