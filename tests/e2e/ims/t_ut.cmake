# The Ut interface (t_ut.sh, docs/ut.md): fixture imsut = ims1 plus [ut] and
# the real Keystone of tests/e2e/keystone (setup needs e2e_keystone; every
# test takes the Keystone's lock, as t_bearer.cmake does).
set(_ut_env ${_ims_env} "KS_STATE=${CMAKE_BINARY_DIR}/tests/e2e/keystone/state")
ims_fixture(imsut)
set_tests_properties(e2e_ims_imsut_setup PROPERTIES FIXTURES_REQUIRED e2e_keystone
  ENVIRONMENT "${_ut_env}" RESOURCE_LOCK "e2e_ims_imsut;e2e_keystone")
foreach(_ut auth forward barring resources https outage)
  ims_test(ut_${_ut} imsut 90)
  set_tests_properties(e2e_ims_imsut_ut_${_ut} PROPERTIES
    FIXTURES_REQUIRED "e2e_ims_imsut;e2e_keystone" ENVIRONMENT "${_ut_env}"
    RESOURCE_LOCK "e2e_ims_imsut_ue;e2e_keystone")
endforeach()
