# Checks that a README code block is exactly an example file, so the documentation cannot drift
# from the program that is compiled and tested. The block is delimited by the lines
# `<!-- begin examples/<file> -->` + "```cpp" and "```" + `<!-- end examples/<file> -->`.
# Usage: cmake -DREADME=... -DEXAMPLE=.../examples/<file> -P check_readme_example.cmake
file(READ "${README}" readme)
file(READ "${EXAMPLE}" example)
get_filename_component(file "${EXAMPLE}" NAME)
set(open "<!-- begin examples/${file} -->\n```cpp\n")
set(close "```\n<!-- end examples/${file} -->")
string(FIND "${readme}" "${open}" begin)
string(FIND "${readme}" "${close}" end)
if(begin EQUAL -1 OR end EQUAL -1)
  message(FATAL_ERROR "README.md: the block markers of examples/${file} are missing")
endif()
string(LENGTH "${open}" marker_length)
math(EXPR begin "${begin} + ${marker_length}")
math(EXPR length "${end} - ${begin}")
string(SUBSTRING "${readme}" ${begin} ${length} block)
if(NOT block STREQUAL example)
  message(FATAL_ERROR "README.md's block of examples/${file} differs from the file: copy the file into the README")
endif()
