# detect: attack detectors at the SIP edge (detect.c): scanner
# fingerprints, user sweeps and malformed bursts per source; a detection
# is audited and can put the source in the dynamic deny group (src/acl).
list(APPEND IMS_SOURCES
  src/detect/detect.c)
