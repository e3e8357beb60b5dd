list(APPEND IMS_SOURCES
  src/base/alloc.c
  src/base/buf.c
  src/base/err.c
  src/base/log.c
  src/base/str.c
  src/base/thread.c
  src/base/xml.c)
