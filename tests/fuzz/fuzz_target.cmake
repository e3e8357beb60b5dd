# ims_fuzz_target(NAME SOURCE CORPUS SECONDS [EXTRA_DIR...] [SOURCES file...]):
# one harness (SOURCES: more files it is built from, e.g. test helpers).
# NAME_replay (every build, label unit) replays CORPUS/ok, CORPUS/bad and any
# EXTRA_DIR through the harness with replay_main.c; NAME (-DIMS_FUZZ=ON,
# clang) is the libFuzzer binary, run for SECONDS on a scratch copy of the
# corpus (NAME_smoke, label fuzz):
#   cmake --build build-fuzz --target NAME && ctest --test-dir build-fuzz -R NAME
function(ims_fuzz_target name source corpus seconds)
  cmake_parse_arguments(F "" "" "SOURCES" ${ARGN})
  add_executable(${name}_replay ${source} ${F_SOURCES} replay_main.c)
  target_link_libraries(${name}_replay PRIVATE imscore)
  target_include_directories(${name}_replay PRIVATE ${PROJECT_SOURCE_DIR}/tests/helpers)
  if(IMS_FUZZ)
    # imscore carries -fsanitize=fuzzer-no-link coverage hooks; libFuzzer's
    # runtime provides them (its main is not used: ours is linked first)
    target_link_options(${name}_replay PRIVATE -fsanitize=fuzzer-no-link)
  endif()
  add_test(NAME ${name}_replay COMMAND ${name}_replay ${corpus}/ok ${corpus}/bad
    ${F_UNPARSED_ARGUMENTS})
  math(EXPR replay_timeout "60 * ${IMS_TIMEOUT_MULT}")
  set_tests_properties(${name}_replay PROPERTIES LABELS unit TIMEOUT ${replay_timeout})
  if(IMS_FUZZ)
    add_executable(${name} ${source} ${F_SOURCES})
    target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests/helpers)
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_libraries(${name} PRIVATE imscore)
    # libFuzzer writes new inputs into its first corpus directory: it gets a
    # scratch copy (fuzz_smoke.cmake), never the checked-in corpus
    add_test(NAME ${name}_smoke
      COMMAND ${CMAKE_COMMAND}
        -DFUZZER=$<TARGET_FILE:${name}>
        -DCORPUS=${corpus}
        -DWORK=${CMAKE_CURRENT_BINARY_DIR}/${name}_smoke
        -DSECONDS=${seconds}
        -P ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_smoke.cmake)
    math(EXPR smoke_timeout "(${seconds} + 120) * ${IMS_TIMEOUT_MULT}")
    set_tests_properties(${name}_smoke PROPERTIES LABELS fuzz TIMEOUT ${smoke_timeout})
  endif()
endfunction()
