list(APPEND IMS_SOURCES
  src/hss/auth.c)
