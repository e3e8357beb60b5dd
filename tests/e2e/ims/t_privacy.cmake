# Privacy at the trust-domain boundary (t_privacy.sh, docs/privacy.md): RFC 3323
# id/user/none/critical and RFC 3325 PAI as the callee's sipp sees them, at the
# P-CSCF toward the UE and at the S-CSCF toward another network; both fixtures.
foreach(fix ims1 ims4)
  ims_test(privacy_id ${fix} 60)
  ims_test(privacy_plain ${fix} 60)
  ims_test(privacy_user ${fix} 60)
  ims_test(privacy_none ${fix} 60)
  ims_test(privacy_critical ${fix} 90)
  ims_test(privacy_out ${fix} 60)
  ims_test(privacy_call ${fix} 90)
endforeach()
