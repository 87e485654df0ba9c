# A user who only wants the headers: configure tsmc on its own with Eigen and nothing else (Catch2
# and Google Benchmark hidden), then install. Checks that tests, examples and benchmarks default
# off, that the build type defaults to Release, that nothing needs building and that the install
# has the headers and the package files. Then checks that asking for the tests without Catch2 is a
# configure error rather than a silent skip.
# Usage: cmake -DSOURCE=... -DBINARY=... -DGENERATOR=... -DEigen3_DIR=... -P headers_only.cmake
file(REMOVE_RECURSE "${BINARY}")
set(hide -DCMAKE_DISABLE_FIND_PACKAGE_Catch2=ON -DCMAKE_DISABLE_FIND_PACKAGE_benchmark=ON)
string(TIMESTAMP t0 "%s")
execute_process(COMMAND ${CMAKE_COMMAND} -S "${SOURCE}" -B "${BINARY}/build" -G "${GENERATOR}" ${hide}
                        -DEigen3_DIR=${Eigen3_DIR}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "configure with only Eigen failed:\n${out}\n${err}")
endif()
load_cache("${BINARY}/build" READ_WITH_PREFIX cache_
           TSMC_BUILD_TESTS TSMC_BUILD_EXAMPLES TSMC_BUILD_BENCHMARKS CMAKE_BUILD_TYPE)
foreach(option TSMC_BUILD_TESTS TSMC_BUILD_EXAMPLES TSMC_BUILD_BENCHMARKS)
  if(cache_${option})
    message(FATAL_ERROR "${option} defaults to '${cache_${option}}' without its packages; expected OFF")
  endif()
endforeach()
if(NOT cache_CMAKE_BUILD_TYPE STREQUAL "Release")
  message(FATAL_ERROR "CMAKE_BUILD_TYPE defaults to '${cache_CMAKE_BUILD_TYPE}'; expected Release")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build "${BINARY}/build" RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "build of the headers-only configuration failed:\n${out}\n${err}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --install "${BINARY}/build" --prefix "${BINARY}/prefix"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "install failed:\n${out}\n${err}")
endif()
string(TIMESTAMP t1 "%s")
math(EXPR seconds "${t1} - ${t0}")
foreach(file include/tsmc/tsmc.hpp include/tsmc/all.hpp include/tsmc/smc/sampler.hpp share/cmake/tsmc/tsmcConfig.cmake
             share/cmake/tsmc/tsmcTargets.cmake)
  if(NOT EXISTS "${BINARY}/prefix/${file}")
    message(FATAL_ERROR "the install lacks ${file}")
  endif()
endforeach()
message(STATUS "configure, build and install with only Eigen: ${seconds} s")

# Asked for explicitly, a missing package must stop the configure.
execute_process(COMMAND ${CMAKE_COMMAND} -S "${SOURCE}" -B "${BINARY}/asked" -G "${GENERATOR}" ${hide}
                        -DEigen3_DIR=${Eigen3_DIR} -DTSMC_BUILD_TESTS=ON
                RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
if(rc EQUAL 0)
  message(FATAL_ERROR "-DTSMC_BUILD_TESTS=ON without Catch2 configured; expected a configure error")
endif()
