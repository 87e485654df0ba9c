# Runs the flagship twice with the same settings (ARGS, comma-separated): on the built-in world and with
# --arpa MODELS/builtin.arpa (write_example_models' export of the same trigram), and checks that
# the two summary CSVs are byte-identical: the ARPA export reads back as the same model.
#   cmake -DPROGRAM=flagship -DMODELS=dir -DWORK=dir -DARGS=--corpus,2000,... -P check_same_csv.cmake
string(REPLACE "," ";" ARGS "${ARGS}")
file(MAKE_DIRECTORY "${WORK}")
foreach(run IN ITEMS builtin arpa)
  set(extra "")
  if(run STREQUAL "arpa")
    set(extra --arpa "${MODELS}/builtin.arpa")
  endif()
  execute_process(COMMAND "${PROGRAM}" ${ARGS} ${extra} --csv "${WORK}/${run}.csv" RESULT_VARIABLE status
                  OUTPUT_QUIET ERROR_VARIABLE err)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "the ${run} run failed (exit status ${status}): ${err}")
  endif()
endforeach()
file(READ "${WORK}/builtin.csv" a)
file(READ "${WORK}/arpa.csv" b)
if(NOT a STREQUAL b)
  message(FATAL_ERROR "the CSVs differ:\nbuilt-in:\n${a}\n--arpa:\n${b}")
endif()
message(STATUS "identical:\n${a}")
