list(APPEND IMS_SOURCES
  src/core/server.c)
