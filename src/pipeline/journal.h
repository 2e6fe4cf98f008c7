// The per-layer results of a calibrated layer-by-layer run (GPTQ, AWQ),
// kept on disk as each layer finishes so that an interrupted run can go on
// from its last finished layer (quantize --resume) and write the same bytes
// as one that was never interrupted.
//
// The journal is a folder beside the output, "<output>.qforge-resume": a
// file per finished layer (its LayerOutput) and journal.json naming the run
// it belongs to (a fingerprint of model, plan, options and calibration
// tokens) and how many layers are done. Each file is written under a
// temporary name and renamed, so a kill at any moment leaves a journal that
// reads back whole. It never looks like a model; it is removed once the
// output is committed.
#pragma once

#include <cstdint>
#include <string>

#include "algorithms/layer_output.h"
#include "qforge/status.h"

namespace qforge {

class LayerJournal {
 public:
  // The journal folder of an output path.
  static std::string DirFor(const std::string& output_path);

  // What identifies a run: a readable description (one fact a line: model
  // files, recipes, options) and a hash over it and the calibration tokens.
  struct RunId {
    std::string description;
    std::string hash;
  };

  // Opens dir for a run. resume: continue a journal of the same run (when
  // it belongs to another run, the error names the first line of the
  // description that differs; a missing journal starts afresh). Otherwise
  // any old journal there is discarded and the run starts afresh.
  static Result<LayerJournal> Open(const std::string& dir, const RunId& run, bool resume);

  // Decoder layers whose results are kept: 0 .. layers_done() - 1.
  int64_t layers_done() const { return layers_done_; }
  // Layers the run took from the journal: those kept when it was opened,
  // less any Truncate cut off.
  int64_t resumed() const { return resumed_; }
  const std::string& dir() const { return dir_; }

  // Keeps a finished decoder layer's results (out.layer must be
  // layers_done()) and advances layers_done().
  Status Save(const LayerOutput& out);
  // A kept layer's results, exactly as saved. Every count and size read is
  // bounded; whether the entries fit the model is the caller's check.
  Result<LayerOutput> Load(int64_t layer) const;
  // Forgets layers from `layer` on (one could not be read back), so the run
  // computes them again.
  Status Truncate(int64_t layer);
  // Removes the folder (the run's output is committed).
  void Remove();

 private:
  Status WriteState() const;
  std::string dir_;
  RunId run_;
  int64_t layers_done_ = 0;
  int64_t resumed_ = 0;
};

}  // namespace qforge
