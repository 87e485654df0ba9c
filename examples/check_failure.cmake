# Runs PROGRAM with ARGS (comma-separated) and checks that it fails: a non-zero exit status and
# EXPECT in what it printed (stderr and stdout). Used by the example.bad_options.* tests.
#   cmake -DPROGRAM=path -DARGS=--a=1,--b=2 -DEXPECT=text -P check_failure.cmake
string(REPLACE "," ";" args "${ARGS}")
execute_process(COMMAND "${PROGRAM}" ${args} RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
message(STATUS "exit status ${status}; stderr: ${err}")
if(status EQUAL 0)
  message(FATAL_ERROR "${PROGRAM} ${args}: exit status 0, expected a failure (stdout: ${out})")
endif()
string(FIND "${err}${out}" "${EXPECT}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "${PROGRAM} ${args}: the message does not contain '${EXPECT}': ${err}${out}")
endif()
