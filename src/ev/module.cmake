list(APPEND IMS_SOURCES
  src/ev/loop.c
  src/ev/timer.c)
