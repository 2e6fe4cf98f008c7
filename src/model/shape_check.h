// Every tensor's shape against the hyper-parameters the model states, so a
// checkpoint whose config and tensors disagree fails when it is opened, with
// the tensor, the shape found and the shape expected — not with a crash, a
// NaN or a file nothing can load.
#pragma once

#include "model/model.h"
#include "qforge/status.h"

namespace qforge {

// For architectures qforge knows (ArchSpec): embeddings and output
// [n_embd, n_vocab] (n_vocab: the tokenizer's token count), norms [n_embd],
// q/k/v/o, gate/up/down, q/k norms and biases from the head counts, head
// dimensions and feed-forward length. Tensors it has no rule for are left
// alone; a missing tensor is the engine's error, not this one.
Status CheckTensorShapes(const Model& model);

}  // namespace qforge
