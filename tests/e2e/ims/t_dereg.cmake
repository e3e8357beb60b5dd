# A deregistration SAR the HSS missed while it was down reaches it once it is
# back (src/cscf/dereg.c; t_dereg.sh).  Its own stack; the ims1 fixture
# provides the environment.
ims_test(dereg_retry ims1 120)
