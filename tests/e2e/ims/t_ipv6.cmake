# IMS over IPv6 and at a dual-stack P-CSCF (t_ipv6.sh): the ims6 fixture runs
# the generic registration and session tests on ::1, and the dual-stack ones.
ims_fixture(ims6)
foreach(_t register_md5 register_aka register_tcp reregister deregister malformed
           lir sess_call sess_message)
  ims_test(${_t} ims6 90)
endforeach()
ims_test(dual_stack_register ims6 60)
ims_test(dual_stack_call ims6 90)
ims_test(dual_stack_message ims6 90)
