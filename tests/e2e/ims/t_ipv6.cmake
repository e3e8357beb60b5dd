# IMS over IPv6 and at a dual-stack P-CSCF (t_ipv6.sh): the ims6 (one process)
# and ims46 (four, Cx over Diameter on ::1) fixtures run the generic
# registration and session tests on ::1, and ims6 the dual-stack ones.
foreach(_fix ims6 ims46)
  ims_fixture(${_fix})
  foreach(_t register_md5 register_aka register_tcp reregister deregister malformed
             lir sess_call sess_message)
    ims_test(${_t} ${_fix} 90)
  endforeach()
endforeach()
ims_test(dual_stack_register ims6 60)
ims_test(dual_stack_call ims6 90)
ims_test(dual_stack_message ims6 90)
