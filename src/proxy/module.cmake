# The SIP transaction layer (RFC 3261 §17) lives with the proxy core that is
# its only transaction user; src/sip/module.cmake belongs to the parser.
list(APPEND IMS_SOURCES
  src/sip/txn.c
  src/proxy/proxy.c
  src/proxy/fwd.c
  src/proxy/ratelimit.c
  src/proxy/route.c
  src/proxy/pmsg.c)
