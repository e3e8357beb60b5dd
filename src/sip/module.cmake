list(APPEND IMS_SOURCES
  src/sip/parse_msg.c
  src/sip/msg_rebase.c
  src/sip/parse_misc.c
  src/sip/parse_uri.c
  src/sip/parse_nameaddr.c
  src/sip/parse_via.c
  src/sip/parse_auth.c
  src/sip/build.c)
