# store: the subscriber store. The schema migrations in schema/<backend>/
# are compiled in (embed_schema.cmake).
file(GLOB IMS_STORE_SCHEMA CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/store/schema/*/*.sql)
set(IMS_STORE_SCHEMA_C ${CMAKE_BINARY_DIR}/generated/store_schema.c)
add_custom_command(OUTPUT ${IMS_STORE_SCHEMA_C}
  COMMAND ${CMAKE_COMMAND} -DSRC=${CMAKE_SOURCE_DIR}/src/store/schema
          -DOUT=${IMS_STORE_SCHEMA_C} -P ${CMAKE_SOURCE_DIR}/src/store/embed_schema.cmake
  DEPENDS ${IMS_STORE_SCHEMA} ${CMAKE_SOURCE_DIR}/src/store/embed_schema.cmake
  COMMENT "Embedding the store schema migrations")
list(APPEND IMS_SOURCES
  src/store/store.c
  src/store/store_sql.c
  src/store/store_admin.c
  src/store/store_cx.c
  src/store/store_cache.c
  src/store/store_sqnblk.c
  src/store/store_io.c
  src/store/store_sqlite.c
  src/store/sqlite_pcache.c
  src/store/store_pg.c
  src/store/exec.c
  ${IMS_STORE_SCHEMA_C})
