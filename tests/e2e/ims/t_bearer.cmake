# RFC 8898 Bearer (Keystone tokens) and the policy at the S-CSCF (t_bearer.sh).
# Fixtures imsk (one process) and imsk4 (four processes, Cx over Diameter) =
# ims1 / ims4 plus the real Keystone of tests/e2e/keystone: their setup needs
# e2e_keystone, and everything takes the Keystone's lock (bearer_outage stops
# it for a moment, as e2e_keystone_keystone_down does).
set(_kb_env ${_ims_env} "KS_STATE=${CMAKE_BINARY_DIR}/tests/e2e/keystone/state")
foreach(_fix imsk imsk4)
  ims_fixture(${_fix})
  set_tests_properties(e2e_ims_${_fix}_setup PROPERTIES FIXTURES_REQUIRED e2e_keystone
    ENVIRONMENT "${_kb_env}" RESOURCE_LOCK "e2e_ims_${_fix};e2e_keystone")
  foreach(_kb challenge valid revoked other norole mfa appcred call_external call_token outage)
    ims_test(bearer_${_kb} ${_fix} 60)
    set_tests_properties(e2e_ims_${_fix}_bearer_${_kb} PROPERTIES
      FIXTURES_REQUIRED "e2e_ims_${_fix};e2e_keystone" ENVIRONMENT "${_kb_env}"
      RESOURCE_LOCK "e2e_ims_${_fix}_ue;e2e_keystone")
  endforeach()
endforeach()
