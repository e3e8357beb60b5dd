list(APPEND IMS_SOURCES
  src/crypto/encode.c
  src/crypto/milenage.c
  src/crypto/aka.c
  src/crypto/digest.c
  src/crypto/keyrepo.c
  src/crypto/mac.c)
