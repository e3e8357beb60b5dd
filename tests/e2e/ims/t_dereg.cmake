# A deregistration SAR the HSS missed while it was down reaches it once it is
# back, and a registration that lapsed while the S-CSCF was down gets its SAR
# after the restart (src/cscf/dereg.c; t_dereg.sh).  Their own stack; the
# ims1 fixture provides the environment.
ims_test(dereg_retry ims1 120)
ims_test(dereg_restart ims1 120)
