# http: a small HTTP client on our loops (libcurl multi; docs/internals/cloudas.md),
# used by the cloud AS for Keystone and the OpenStack APIs.
pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)
list(APPEND IMS_SOURCES src/http/http.c)
