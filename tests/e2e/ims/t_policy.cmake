# Policy follow-ups (t_policy.sh): audit of denials, ims:subscribe, SIGHUP
# reload, --check-config (fixture imsk, the Keystone one of t_bearer.cmake),
# and Bearer tokens stripped toward the UE (ims1, no Keystone at the S-CSCF).
foreach(_pt audit subscribe subscribe_token bad_reload check_config)
  ims_test(policy_${_pt} imsk 60)
  set_tests_properties(e2e_ims_imsk_policy_${_pt} PROPERTIES
    FIXTURES_REQUIRED "e2e_ims_imsk;e2e_keystone" ENVIRONMENT "${_kb_env}"
    RESOURCE_LOCK "e2e_ims_imsk_ue;e2e_keystone")
endforeach()
ims_test(policy_strip_ue ims1 60)
ims_test(policy_strip_out ims1 60)
# [ut] policy_file reloaded on SIGHUP (fixture imsut of t_ut.cmake)
ims_test(policy_ut_reload imsut 60)
set_tests_properties(e2e_ims_imsut_policy_ut_reload PROPERTIES
  FIXTURES_REQUIRED "e2e_ims_imsut;e2e_keystone" ENVIRONMENT "${_kb_env}"
  RESOURCE_LOCK "e2e_ims_imsut_ue;e2e_keystone")
