# dia: freeDiameter glue (node.c), the Cx/Dx/Sh dictionary (dict.c) and the
# table-driven AVP <-> struct codec (codec.c, tables.c).
list(APPEND IMS_SOURCES
  src/dia/node.c
  src/dia/dict.c
  src/dia/codec.c
  src/dia/tables.c)
