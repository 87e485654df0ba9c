#include <tsmc/tsmc.hpp>
#include <cstdio>
int main() { std::printf("tsmc %s\n", tsmc::version_string); }
