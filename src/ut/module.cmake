# ut: the Ut interface, users' own IMS settings over HTTP(S) with Keystone
# tokens (docs/ut.md, docs/ut-openapi.yaml): ut.c the server (libmicrohttpd,
# its own loop and store thread), ut_doc.c the settings model and JSON.
list(APPEND IMS_SOURCES
  src/ut/ut.c
  src/ut/ut_doc.c)
