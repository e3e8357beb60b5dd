# policy: the oslo.policy-compatible rule engine (docs/policy.md).
# compile.c turns rule text into a tree, eval.c enforces it, load.c reads
# YAML (libyaml, Debian libyaml-dev) or JSON (jansson) policy files.
list(APPEND IMS_SOURCES
  src/policy/compile.c
  src/policy/eval.c
  src/policy/load.c
  src/policy/holder.c)
pkg_check_modules(YAML REQUIRED IMPORTED_TARGET yaml-0.1)
# imscore is created after the modules are included: link it at the end of
# this directory's processing.
cmake_language(DEFER CALL target_link_libraries imscore PUBLIC PkgConfig::YAML)
