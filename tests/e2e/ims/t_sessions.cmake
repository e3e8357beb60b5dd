# S-CSCF session processing (t_sessions.sh): calls, MESSAGE, 404/480, iFC to
# an AS and back (ODI), AS down with both default handlings, an AS answering
# itself (originating, terminating-unregistered); both fixtures.
foreach(fix ims1 ims4)
  ims_test(sess_call ${fix} 90)
  ims_test(sess_message ${fix} 90)
  ims_test(sess_unknown ${fix} 60)
  ims_test(sess_unregistered ${fix} 60)
  ims_test(sess_ifc_as ${fix} 90)
  ims_test(sess_as_down ${fix} 90)
  ims_test(sess_as_answers ${fix} 60)
  ims_test(sess_next_contact ${fix} 90)
  ims_test(sess_ring_out ${fix} 90)
endforeach()
