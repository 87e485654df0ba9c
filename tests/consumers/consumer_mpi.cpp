// A program built against tsmc::mpi by a project of its own (tests/consumers/*): the distributed
// headers are found and MPI links. Run without mpirun it is a one-rank job (MPI singleton).
#include <tsmc/distributed/communicator.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  tsmc::distributed::mpi_environment environment(argc, argv);
  tsmc::distributed::communicator comm;
  const auto block = tsmc::distributed::block_range::of(10, 1, 3);  // [3, 6)
  std::printf("tsmc::mpi: rank %zu of %zu; block [%zu, %zu)\n", comm.rank(), comm.size(), block.begin, block.end);
  return block.begin == 3 && block.end == 6 ? 0 : 1;
}
