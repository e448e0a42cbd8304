#include "apps/train_cli.hpp"

#include <CLI/CLI.hpp>

#include "comm/mpi_session.hpp"
#include "config/config.hpp"
#include "shardgan/config.hpp"
#include "train/run_guard.hpp"
#include "train/stop_signal.hpp"
#include "train/trainer.hpp"

namespace shardgan::apps {

int train_cli(int argc, char** argv, const train::GraphFactory& make_graph) {
  CLI::App app{"shardgan-train " SHARDGAN_VERSION
               ": data-parallel GAN training on shardgan shards "
               "(one process, or N ranks under mpirun/srun). Keys: docs/configuration.md"};
  std::string config_file, run_dir, resume;
  std::vector<std::string> overrides;
  bool dry_run = false, json = false;
  app.add_option("--config", config_file, "TOML run configuration")->required();
  app.add_option("--set", overrides, "override a key: section.key=value (repeatable)");
  app.add_option("--run-dir", run_dir, "output folder (default: runs/<config name>)");
  app.add_option("--resume", resume, "auto (newest valid checkpoint, or start fresh) or a checkpoint/run folder");
  app.add_flag("--dry-run", dry_run, "validate config and data, print the plan, train nothing");
  app.add_flag("--json", json, "with --dry-run: print the plan as one JSON object (the resolved config and plan)")
      ->needs("--dry-run");
  app.set_version_flag("--version", SHARDGAN_VERSION);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  train::tune_allocator();
  train::install_stop_handlers();  // before MPI_Init, which may wait for the other ranks
  comm::MpiSession session(&argc, &argv);
  train::install_stop_handlers();  // again, in case the MPI library installed its own
  train::TrainOptions options;
  return train::run_or_abort(session, "shardgan-train", [&] {
    options.config = config::load(config_file, overrides);
    options.run_dir = run_dir.empty() ? std::filesystem::path("runs") / std::filesystem::path(config_file).stem()
                                      : std::filesystem::path(run_dir);
    options.resume = resume;
    options.dry_run = dry_run;
    options.json = json;
    options.make_graph = make_graph;
    return train::train(options, session);
  });
}

}  // namespace shardgan::apps
