// shardgan-train: trains a GAN on packed shards, as one process or as N ranks under mpirun/srun.
#include "apps/train_cli.hpp"

int main(int argc, char** argv) {
  return shardgan::apps::train_cli(argc, argv, /*make_graph=*/{});
}
