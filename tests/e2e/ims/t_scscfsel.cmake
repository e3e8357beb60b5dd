# The I-CSCF selects an S-CSCF by capabilities and fails over on 503 and on
# no answer, against real S-CSCF processes (t_scscfsel.sh).  Its own stack;
# the ims1 fixture provides the environment.
ims_test(scscf_select ims1 180)
