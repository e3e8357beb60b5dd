# admin: the admin control socket of a running imscloud (admin_srv.c), its
# JSON-lines protocol (admin_proto.c) and the blocking client imscloudctl
# uses (admin_client.c). Needs jansson (Debian libjansson-dev).
#
# store_ext.c belongs to the store module (store calls added for the admin
# side: S-CSCF peers, key repository swap, sealing secrets for import); it is
# listed here so the store's own module.cmake did not have to change.
list(APPEND IMS_SOURCES
  src/admin/admin_proto.c
  src/admin/admin_srv.c
  src/admin/admin_client.c
  src/admin/admin_audit.c
  src/store/store_ext.c)
