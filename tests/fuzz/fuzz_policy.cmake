# Policy engine fuzzing (src/policy): policy files are operator input, but a
# typo must never crash the server (fuzz_target.cmake: fuzz_policy_replay in
# every build, fuzz_policy for a minute with -DIMS_FUZZ=ON).
ims_fuzz_target(fuzz_policy fuzz_policy.c ${PROJECT_SOURCE_DIR}/tests/corpus/policy 60)
