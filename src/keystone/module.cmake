# keystone: the Keystone v3 client (docs/internals/keystone.md): libcurl's
# multi interface on our loops (keystone.c), the shared validation cache with
# single flight (ks_cache.c), JSON bodies (ks_json.c, jansson), [keystone]
# options (ks_cfg.c).  Needs libcurl (Debian libcurl4-openssl-dev).
pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)
list(APPEND IMS_SOURCES
  src/keystone/keystone.c
  src/keystone/ks_cache.c
  src/keystone/ks_json.c
  src/keystone/ks_cfg.c)
# imscore is created after the modules are included: link libcurl then.
cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR} CALL
  target_link_libraries imscore PUBLIC PkgConfig::CURL)
