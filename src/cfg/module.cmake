list(APPEND IMS_SOURCES
  src/cfg/cfg.c)
