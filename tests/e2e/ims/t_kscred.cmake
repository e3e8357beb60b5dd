# Subscribers' Digest secrets from Keystone's credentials API (t_kscred.sh,
# issue 5 part 5).  Fixture imsk (t_bearer.cmake: ims1 plus the real
# Keystone; kc_conf adds [hss] keystone_credentials) and imsk4 (four
# processes: the MAR/UAR go over Diameter to the HSS process).  The users are made
# with the openstack CLI; kscred_outage stops the Keystone for a moment, so
# everything takes the Keystone's lock.
foreach(_fix imsk imsk4)
  foreach(_kc register deleted badrealm outage)
    ims_test(kscred_${_kc} ${_fix} 90)
    set_tests_properties(e2e_ims_${_fix}_kscred_${_kc} PROPERTIES
      FIXTURES_REQUIRED "e2e_ims_${_fix};e2e_keystone" ENVIRONMENT "${_kb_env}"
      RESOURCE_LOCK "e2e_ims_${_fix}_ue;e2e_keystone")
  endforeach()
endforeach()
