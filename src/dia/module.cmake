# dia: freeDiameter glue (node.c), the Cx/Dx/Sh dictionary (dict.c), the
# table-driven AVP <-> struct codec (codec.c, tables.c), and a guard around
# a freeDiameter fault (fd_guard.c; its link options are in CMakeLists.txt).
list(APPEND IMS_SOURCES
  src/dia/node.c
  src/dia/dict.c
  src/dia/codec.c
  src/dia/tables.c
  src/dia/fd_guard.c)
