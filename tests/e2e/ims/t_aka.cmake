# AKA re-synchronisation from a UE through P, I and S to the HSS, and a
# forged AUTS refused (t_aka.sh); one process, four, and both on IPv6.
foreach(_fix ims1 ims4 ims6 ims46)
  ims_test(aka_resync ${_fix} 90)
endforeach()
