# Checks that the README's "Plugging in your model" code block is exactly examples/quickstart.cpp,
# so the documentation cannot drift from the program that is compiled and tested.
# Usage: cmake -DREADME=... -DEXAMPLE=... -P check_readme_example.cmake
file(READ "${README}" readme)
file(READ "${EXAMPLE}" example)
string(FIND "${readme}" "<!-- begin examples/quickstart.cpp -->\n```cpp\n" begin)
string(FIND "${readme}" "```\n<!-- end examples/quickstart.cpp -->" end)
if(begin EQUAL -1 OR end EQUAL -1)
  message(FATAL_ERROR "README.md: the quickstart block markers are missing")
endif()
string(LENGTH "<!-- begin examples/quickstart.cpp -->\n```cpp\n" marker_length)
math(EXPR begin "${begin} + ${marker_length}")
math(EXPR length "${end} - ${begin}")
string(SUBSTRING "${readme}" ${begin} ${length} block)
if(NOT block STREQUAL example)
  message(FATAL_ERROR "README.md's quickstart block differs from examples/quickstart.cpp: copy the file into the README")
endif()
