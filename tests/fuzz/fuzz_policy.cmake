# Policy engine fuzzing (src/policy), the same pattern as the SIP parser's:
# fuzz_policy_replay (every build, label unit) replays tests/corpus/policy
# through the harness; fuzz_policy (-DIMS_FUZZ=ON, clang) is the libFuzzer
# binary, run for a minute on a scratch copy of that corpus (label fuzz):
#   cmake --build build-fuzz --target fuzz_policy && ctest --test-dir build-fuzz -R fuzz_policy
set(IMS_POLICY_CORPUS ${PROJECT_SOURCE_DIR}/tests/corpus/policy)

add_executable(fuzz_policy_replay fuzz_policy.c replay_main.c)
target_link_libraries(fuzz_policy_replay PRIVATE imscore)
if(IMS_FUZZ)
  target_link_options(fuzz_policy_replay PRIVATE -fsanitize=fuzzer-no-link)
endif()
add_test(NAME fuzz_policy_replay COMMAND fuzz_policy_replay ${IMS_POLICY_CORPUS}/ok
         ${IMS_POLICY_CORPUS}/bad)
math(EXPR ims_fuzz_policy_replay_timeout "60 * ${IMS_TIMEOUT_MULT}")
set_tests_properties(fuzz_policy_replay PROPERTIES LABELS unit
  TIMEOUT ${ims_fuzz_policy_replay_timeout})

if(IMS_FUZZ)
  add_executable(fuzz_policy fuzz_policy.c)
  target_compile_options(fuzz_policy PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(fuzz_policy PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(fuzz_policy PRIVATE imscore)
  add_test(NAME fuzz_policy_smoke
    COMMAND ${CMAKE_COMMAND}
      -DFUZZER=$<TARGET_FILE:fuzz_policy>
      -DCORPUS=${IMS_POLICY_CORPUS}
      -DWORK=${CMAKE_CURRENT_BINARY_DIR}/fuzz_policy_smoke
      -DSECONDS=60
      -P ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_smoke.cmake)
  math(EXPR ims_fuzz_policy_timeout "180 * ${IMS_TIMEOUT_MULT}")
  set_tests_properties(fuzz_policy_smoke PROPERTIES LABELS fuzz TIMEOUT ${ims_fuzz_policy_timeout})
endif()
