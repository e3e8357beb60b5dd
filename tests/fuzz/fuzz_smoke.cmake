# fuzz_smoke.cmake - cmake -P script: copy a corpus (ok/, bad/) into a scratch
# directory and run the libFuzzer binary on it for SECONDS seconds.
#   -DFUZZER=path -DCORPUS=tests/corpus/sip -DWORK=scratch dir -DSECONDS=60
foreach(v FUZZER CORPUS WORK SECONDS)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "fuzz_smoke.cmake: -D${v}= is required")
  endif()
endforeach()
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK}/corpus ${WORK}/artifacts)
file(GLOB seeds ${CORPUS}/ok/* ${CORPUS}/bad/*)
file(COPY ${seeds} DESTINATION ${WORK}/corpus)
execute_process(
  COMMAND ${CMAKE_COMMAND} -E env LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_LIST_DIR}/lsan.supp
          ${FUZZER} -max_total_time=${SECONDS} -timeout=10 -rss_limit_mb=1024
          -print_final_stats=1 -artifact_prefix=${WORK}/artifacts/ ${WORK}/corpus
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  file(GLOB found ${WORK}/artifacts/*)
  message(FATAL_ERROR "${FUZZER} failed (${rc}); inputs: ${found}")
endif()
