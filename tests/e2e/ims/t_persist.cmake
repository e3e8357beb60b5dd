# The S-CSCF's registrations survive a restart, SIGTERM and SIGKILL
# ([scscf] persist; t_persist.sh).  Its own stack; the ims1 fixture provides
# the environment.
ims_test(persist ims1 120)
