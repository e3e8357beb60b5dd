# Per-subscription local roles from the HSS (t_roles.sh), in the fixtures
# imsk and imsk4 (ims1 / ims4 plus Keystone and a policy, t_bearer.cmake):
# Digest users only.
foreach(_fix imsk imsk4)
  ims_test(roles_message ${_fix} 60)
  set_tests_properties(e2e_ims_${_fix}_roles_message PROPERTIES
    FIXTURES_REQUIRED "e2e_ims_${_fix};e2e_keystone" ENVIRONMENT "${_kb_env}"
    RESOURCE_LOCK "e2e_ims_${_fix}_ue;e2e_keystone")
endforeach()
