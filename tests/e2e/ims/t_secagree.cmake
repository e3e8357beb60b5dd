# RFC 3329 sec-agree at the P-CSCF (t_secagree.sh)
foreach(fix ims1 ims4)
  ims_test(secagree_offer ${fix} 60)
endforeach()
