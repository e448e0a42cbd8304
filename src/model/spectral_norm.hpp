#pragma once
// Spectral normalisation (Miyato et al. 2018): a layer computes with W / σ(W), σ(W) its largest singular value,
// estimated by one power iteration per forward pass in training mode (SNGAN, BigGAN, StudioGAN). The iteration's
// vectors u, v are buffers: in checkpoints, and identical on every rank (W is, and every rank starts from rank 0's).
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <functional>

namespace shardgan::model {

class SpectralNormImpl : public torch::nn::Module {
 public:
  /// Wraps `layer` (a torch::nn::Conv2d, ConvTranspose2d or Linear holder, registered as "layer"); `out_dim` is the
  /// weight's output dimension (0; 1 for a transposed convolution, whose weight is [in, out, k, k]).
  template <typename Holder>
  SpectralNormImpl(Holder layer, int64_t out_dim)
      : weight_(&layer->weight), forward_([layer](const torch::Tensor& x) mutable { return layer->forward(x); }) {
    register_module("layer", layer);
    init(out_dim);
  }
  torch::Tensor forward(const torch::Tensor& input);
  /// σ as of the last power iteration (no update).
  double sigma() const;
  /// Takes another layer's u and v (an EMA copy of a network follows the network's power iteration).
  void copy_vectors_from(const SpectralNormImpl& other);

 private:
  void init(int64_t out_dim);
  /// The weight as a matrix [out, rest].
  torch::Tensor matrix(const torch::Tensor& weight) const;

  torch::Tensor* weight_;  ///< the wrapped layer's weight member (its registered parameter between passes)
  std::function<torch::Tensor(const torch::Tensor&)> forward_;
  int64_t out_dim_ = 0;
  torch::Tensor u_, v_;
};
TORCH_MODULE(SpectralNorm);

}  // namespace shardgan::model
