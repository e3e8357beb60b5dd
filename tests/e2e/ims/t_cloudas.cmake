# The cloud AS (t_cloudas.sh, docs/cloud-as.md) against the real OpenStack of
# tests/e2e/openstack.  Fixture imsos = ims1 plus the `as` role; its setup
# needs e2e_openstack (the users' application credentials go into the AS's
# delegations file), and everything takes the OpenStack lock (cloud_nova_down
# stops Nova for a moment).
set(_cas_env ${_ims_env} "OS_STATE=${CMAKE_BINARY_DIR}/tests/e2e/openstack/state")
ims_fixture(imsos)
set_tests_properties(e2e_ims_imsos_setup PROPERTIES FIXTURES_REQUIRED e2e_openstack
  ENVIRONMENT "${_cas_env}" RESOURCE_LOCK "e2e_ims_imsos;e2e_openstack")
foreach(_cas lifecycle reader isolation errors json quota secgroup subscribe bearer nova_down)
  ims_test(cloud_${_cas} imsos 120)
  set_tests_properties(e2e_ims_imsos_cloud_${_cas} PROPERTIES
    FIXTURES_REQUIRED "e2e_ims_imsos;e2e_openstack" ENVIRONMENT "${_cas_env}"
    RESOURCE_LOCK "e2e_ims_imsos_ue;e2e_openstack")
endforeach()
