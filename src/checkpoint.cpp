// Checkpoint files: one HDF5 file per job, written whole and renamed into place each time.
#include "icp/checkpoint.hpp"

#include <fmt/format.h>

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "icp/hdf5.hpp"

namespace icp {

namespace {

constexpr std::int64_t kCheckpointVersion = 1;

h5::Table history_table(const std::vector<KMeansIteration>& history) {
  std::vector<std::int64_t> iteration, changed, restart, relocated;
  std::vector<double> inertia, shift, seconds;
  for (const auto& h : history) {
    iteration.push_back(h.iteration);
    changed.push_back(h.changed);
    restart.push_back(h.restart);
    relocated.push_back(h.relocated);
    inertia.push_back(h.inertia);
    shift.push_back(h.shift);
    seconds.push_back(h.seconds);
  }
  h5::Table t;
  t.fields = {{"iteration", iteration}, {"inertia", inertia}, {"shift", shift},
              {"changed", changed},     {"seconds", seconds}, {"restart", restart},
              {"relocated", relocated}};
  return t;
}

std::vector<KMeansIteration> read_history(const h5::Reader& rd, const std::string& path) {
  std::vector<KMeansIteration> out;
  if (!rd.is_dataset(path)) return out;  // an empty history is written as no dataset
  const h5::Table t = rd.read_table(path);
  auto ints = [&](const char* name) -> const std::vector<std::int64_t>& {
    for (const auto& f : t.fields)
      if (f.name == name) return std::get<std::vector<std::int64_t>>(f.values);
    throw Error(rd.path() + ": " + path + " has no field " + name);
  };
  auto reals = [&](const char* name) -> const std::vector<double>& {
    for (const auto& f : t.fields)
      if (f.name == name) return std::get<std::vector<double>>(f.values);
    throw Error(rd.path() + ": " + path + " has no field " + name);
  };
  const auto& iteration = ints("iteration");
  const auto& changed = ints("changed");
  const auto& restart = ints("restart");
  const auto& relocated = ints("relocated");
  const auto& inertia = reals("inertia");
  const auto& shift = reals("shift");
  const auto& seconds = reals("seconds");
  for (std::size_t i = 0; i < t.rows(); ++i) {
    KMeansIteration h;
    h.iteration = static_cast<int>(iteration[i]);
    h.changed = changed[i];
    h.restart = static_cast<int>(restart[i]);
    h.relocated = relocated[i];
    h.inertia = inertia[i];
    h.shift = shift[i];
    h.seconds = seconds[i];
    out.push_back(h);
  }
  return out;
}

void write_history(h5::Writer& w, const std::string& path,
                   const std::vector<KMeansIteration>& history) {
  if (!history.empty()) w.write_table(path, history_table(history));
}

void write_matrix(h5::Writer& w, const std::string& path, const Matrix& m) {
  w.write(path, std::span<const float>(m.storage()), {m.rows(), m.cols()});
}

Matrix read_matrix(const h5::Reader& rd, const std::string& path) {
  const std::vector<std::uint64_t> dims = rd.dims(path);
  if (dims.size() != 2) throw Error(rd.path() + ": " + path + " is not a matrix");
  Matrix m(dims[0], dims[1]);
  const std::vector<float> v = rd.read<float>(path);
  m.storage().assign(v.begin(), v.end());
  return m;
}

}  // namespace

std::string job_fingerprint(const JobConfig& config) {
  JobConfig c = config;
  c.output = {};
  c.threads = 0;
  return to_toml(c);
}

std::string normalizer_fingerprint(const Normalizer& normalizer) {
  std::string out;
  for (const auto& f : normalizer.features) {
    out += fmt::format("{}|{}|{}|{}|{:a}|{:a}|{:a}|{:a}|{:a}", f.name, f.column,
                       static_cast<int>(f.kind), static_cast<int>(f.transform), f.center, f.scale,
                       f.impute, f.weight, f.offset);
    for (const auto& l : f.levels) out += "|" + l;
    out += "\n";
  }
  return out;
}

void save_checkpoint(const std::string& path, const JobCheckpoint& c) {
  h5::Writer w(path);
  w.attr("/", "icp_checkpoint_version", kCheckpointVersion);
  w.attr("/", "stage", c.stage == CheckpointStage::kmeans ? "kmeans" : "segments");
  w.attr("/", "job", c.job);
  w.attr("/", "normalizer", c.normalizer);
  w.attr("/", "k", static_cast<std::int64_t>(c.k));
  if (c.stage == CheckpointStage::kmeans) {
    const KMeansCheckpoint& s = c.kmeans;
    w.group("/kmeans");
    w.attr("/kmeans", "restart", static_cast<std::int64_t>(s.restart));
    w.attr("/kmeans", "iteration", static_cast<std::int64_t>(s.iteration));
    write_matrix(w, "/kmeans/centroids", s.centroids);
    w.write("/kmeans/assignment", std::span<const std::int32_t>(s.assignment),
            {s.assignment.size()});
    write_history(w, "/kmeans/history", s.history);
    w.attr("/kmeans", "best_restart", static_cast<std::int64_t>(s.best_restart));
    if (s.best_restart >= 0) {
      w.group("/kmeans/best");
      write_matrix(w, "/kmeans/best/centroids", s.best_centroids);
      w.write("/kmeans/best/assignment", std::span<const std::int32_t>(s.best_assignment),
              {s.best_assignment.size()});
      w.write("/kmeans/best/distance", std::span<const float>(s.best_distance),
              {s.best_distance.size()});
      w.attr("/kmeans/best", "inertia", s.best_inertia);
      w.attr("/kmeans/best", "iterations", static_cast<std::int64_t>(s.best_iterations));
      w.attr("/kmeans/best", "converged", static_cast<std::int64_t>(s.best_converged));
      write_history(w, "/kmeans/best/history", s.best_history);
    }
  } else {
    const KMeansResult& r = c.segments;
    w.group("/segments");
    write_matrix(w, "/segments/centroids", r.centroids);
    w.write("/segments/assignment", std::span<const std::int32_t>(r.assignment),
            {r.assignment.size()});
    w.write("/segments/distance", std::span<const float>(r.distance), {r.distance.size()});
    w.write("/segments/sizes", std::span<const std::int64_t>(r.sizes), {r.sizes.size()});
    w.attr("/segments", "inertia", r.inertia);
    w.attr("/segments", "iterations", static_cast<std::int64_t>(r.iterations));
    w.attr("/segments", "converged", static_cast<std::int64_t>(r.converged));
    write_history(w, "/segments/history", r.history);
  }
  w.commit();
}

JobCheckpoint load_checkpoint(const std::string& path) {
  const h5::Reader rd(path);
  if (!rd.has_attr("/", "icp_checkpoint_version"))
    throw Error(path + ": not an icp checkpoint (no icp_checkpoint_version attribute)");
  const std::int64_t version = rd.attr_int("/", "icp_checkpoint_version");
  if (version != kCheckpointVersion)
    throw Error(fmt::format("{}: checkpoint version {} (this icp reads version {})", path, version,
                            kCheckpointVersion));
  JobCheckpoint c;
  const std::string stage = rd.attr_string("/", "stage");
  if (stage != "kmeans" && stage != "segments")
    throw Error(path + ": unknown checkpoint stage '" + stage + "'");
  c.stage = stage == "kmeans" ? CheckpointStage::kmeans : CheckpointStage::segments;
  c.job = rd.attr_string("/", "job");
  c.normalizer = rd.attr_string("/", "normalizer");
  c.k = static_cast<int>(rd.attr_int("/", "k"));
  if (c.stage == CheckpointStage::kmeans) {
    KMeansCheckpoint& s = c.kmeans;
    s.restart = static_cast<int>(rd.attr_int("/kmeans", "restart"));
    s.iteration = static_cast<int>(rd.attr_int("/kmeans", "iteration"));
    s.centroids = read_matrix(rd, "/kmeans/centroids");
    s.assignment = rd.read<std::int32_t>("/kmeans/assignment");
    s.history = read_history(rd, "/kmeans/history");
    s.best_restart = static_cast<int>(rd.attr_int("/kmeans", "best_restart"));
    if (s.best_restart >= 0) {
      s.best_centroids = read_matrix(rd, "/kmeans/best/centroids");
      s.best_assignment = rd.read<std::int32_t>("/kmeans/best/assignment");
      s.best_distance = rd.read<float>("/kmeans/best/distance");
      s.best_inertia = rd.attr_double("/kmeans/best", "inertia");
      s.best_iterations = static_cast<int>(rd.attr_int("/kmeans/best", "iterations"));
      s.best_converged = rd.attr_int("/kmeans/best", "converged") != 0;
      s.best_history = read_history(rd, "/kmeans/best/history");
    }
  } else {
    KMeansResult& r = c.segments;
    r.centroids = read_matrix(rd, "/segments/centroids");
    r.assignment = rd.read<std::int32_t>("/segments/assignment");
    r.distance = rd.read<float>("/segments/distance");
    r.sizes = rd.read<std::int64_t>("/segments/sizes");
    r.inertia = rd.attr_double("/segments", "inertia");
    r.iterations = static_cast<int>(rd.attr_int("/segments", "iterations"));
    r.converged = rd.attr_int("/segments", "converged") != 0;
    r.history = read_history(rd, "/segments/history");
  }
  return c;
}

}  // namespace icp
