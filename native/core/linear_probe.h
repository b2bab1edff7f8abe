// Linear probe: multinomial logistic regression on frozen features, the standard measure of representation quality.
// Features are standardised with the training mean and deviation, then a linear layer is trained with mini-batch Adam
// (seeded shuffling, cosine-decayed learning rate, L2 weight decay on the weights, not the bias). Given several weight
// decays, the probe picks one on a seeded held-out part of the training rows (the usual linear-evaluation protocol:
// the regularisation each representation needs differs, so one fixed value over- or under-fits some of them).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace simclr {

// Every field must be set: the defaults are the caller's (TypeScript's, src/eval/linear-probe.ts).
struct LinearProbeOptions {
  int64_t num_classes = 0;      // labels lie in [0, num_classes)
  int64_t epochs = 0;
  int64_t batch_size = 0;
  double learning_rate = 0;     // Adam's peak rate, decayed to 0 by a cosine over all steps
  std::vector<double> weight_decays;  // L2 penalties on the weights to choose from; one: that penalty, no validation
  double validation_fraction = 0;     // share of the training rows held out to choose among several weight decays
  uint64_t seed = 0;            // shuffling and held-out rows; weights start at zero, so the result depends on nothing else
};

struct LinearProbeResult {
  at::Tensor weight;            // num_classes x D, applies to raw (unstandardised) features: logits = x W^T + b
  at::Tensor bias;              // num_classes
  at::Tensor test_predictions;  // int64, one per test row
  double train_loss = 0;        // mean cross-entropy over the training set after the last epoch
  double train_accuracy = 0;
  double test_accuracy = 0;
  double weight_decay = 0;      // the penalty of the final fit (the chosen one)
  std::vector<double> validation_accuracies;  // per candidate weight decay, on the held-out rows; empty for one candidate
};

// Trains on (train_features N x D, train_labels N) and measures top-1 on (test_features M x D, test_labels M). With
// several weight decays, each is fitted on the training rows less a held-out share and scored there; the most accurate
// (the larger penalty on a tie) is then fitted on all training rows.
LinearProbeResult TrainLinearProbe(const at::Tensor& train_features, const at::Tensor& train_labels,
                                   const at::Tensor& test_features, const at::Tensor& test_labels,
                                   const LinearProbeOptions& options);

}  // namespace simclr
