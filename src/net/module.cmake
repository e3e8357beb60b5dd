list(APPEND IMS_SOURCES
  src/net/addr.c
  src/net/tp.c
  src/net/udp.c
  src/net/udp_local.c
  src/net/udp_spread.c
  src/net/stun.c
  src/net/tcp.c
  src/net/tls.c
  src/net/resolve.c)
