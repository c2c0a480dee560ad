// Checkpoints of a running job (`icp run --checkpoint`, `--resume`): what a job must keep to
// continue after being stopped and still write the file an uninterrupted run writes.
#pragma once

#include <string>

#include "icp/config.hpp"
#include "icp/kmeans.hpp"
#include "icp/normalize.hpp"

namespace icp {

enum class CheckpointStage {
  kmeans,    ///< inside the k-means fit: `kmeans` holds the state after some iteration
  segments,  ///< k-means finished: `segments` holds its result; lookalike and summary remain
};

struct JobCheckpoint {
  CheckpointStage stage = CheckpointStage::kmeans;
  /// job_fingerprint of the job that wrote it: a resumed job must compute the same thing.
  std::string job;
  /// normalizer_fingerprint of the fitted normalizer: proves the input is still the same.
  std::string normalizer;
  int k = 0;  ///< the job's k (the chosen one when kmeans.k = "auto")
  KMeansCheckpoint kmeans;
  KMeansResult segments;
};

/// The settings that decide a job's results, as text: the resolved job file without [output]
/// (where results go) and the thread count (which never changes a bit).
std::string job_fingerprint(const JobConfig& config);

/// Every number of the normalizer in hexadecimal floating point, so equal means bit-equal.
std::string normalizer_fingerprint(const Normalizer& normalizer);

/// Writes atomically (temporary file, then rename): a kill mid-write leaves the previous
/// checkpoint in place. Throws icp::Error naming the path.
void save_checkpoint(const std::string& path, const JobCheckpoint& checkpoint);

/// Throws icp::Error naming the path when it is missing, not a checkpoint, or of another version.
JobCheckpoint load_checkpoint(const std::string& path);

}  // namespace icp
