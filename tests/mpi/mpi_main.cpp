// Catch2's main for the MPI tests (tsmc_mpi_tests, run by ctest through mpirun): every rank runs
// the same test cases, whose collectives pair up across ranks; the exit status is the worst of
// all ranks', so a failure on any rank fails the job.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <tsmc/distributed/communicator.hpp>

int main(int argc, char** argv) {
  tsmc::distributed::mpi_environment environment(argc, argv);
  int status = Catch::Session().run(argc, argv);
  int worst = 0;
  MPI_Allreduce(&status, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return worst;
}
