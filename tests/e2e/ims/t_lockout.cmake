# t_lockout.sh: brute-force lockout, enumeration resistance, rate limits and
# overload (docs/security.md).  Each test runs a stack of its own; the ims1
# fixture provides the environment.
ims_test(lockout ims1 90)
ims_test(svwar ims1 240)
ims_test(flood ims1 120)
ims_test(overload ims1 120)
