#include "parallel/cuda_graph.hpp"

#include "util/error.hpp"

namespace shardgan::parallel {
namespace {

class EmulatedGraph final : public StepGraph {
 public:
  void warm_up(const std::function<void()>& body) override { body(); }
  void capture(const std::function<void()>& body) override { body_ = body; }
  void replay() override {
    if (!body_) fail("StepGraph::replay before capture");
    body_();
  }

 private:
  std::function<void()> body_;
};

}  // namespace

std::unique_ptr<StepGraph> make_emulated_graph() {
  return std::make_unique<EmulatedGraph>();
}

}  // namespace shardgan::parallel
