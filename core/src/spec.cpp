#include "spec.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <regex>
#include <sstream>

namespace parascan::detail {
namespace {

using json = nlohmann::ordered_json;

// Every run setting, in the order they are written to files.
const std::vector<std::string> kSettingKeys = {
    "cell",      "solver",  "jacobian",       "backend",          "threads",       "sequence_length", "state_dim",
    "input_dim", "batch",   "dtype",          "seed",             "max_iterations", "tolerance",      "prefix_tolerance",
    "initial_guess", "input", "scan_chunks", "save_states", "cell_params", "block_size", "damping", "elk_noise",
    "on_divergence", "chunk_size", "chunk_mode", "pass", "loss", "backward", "backward_jacobian",
    "backward_block_size", "backward_iterations", "backward_chunk_size", "backward_chunk_mode"};

const std::vector<std::string> kStructureKeys = {"name",    "description", "axes",    "zip",
                                                 "exclude", "include",     "repeats", "max_runs"};

constexpr int kDefaultMaxRuns = 10000;

/// A setting's value and the JSON path it came from.
struct Sourced {
  json value;
  std::string path;
};
using Point = std::map<std::string, Sourced>;

/// Sets a setting of a point; null leaves it at its default, so one zip can
/// mix, say, chunked and unchunked runs.
void assign(Point& point, const std::string& key, const json& value, const std::string& path) {
  if (value.is_null())
    point.erase(key);
  else
    point[key] = {value, path};
}

/// Returns the JSON path a whole point came from, for errors about the point itself.
std::string origin_of(const Point& point) {
  for (const auto& [key, sourced] : point)
    if (sourced.path.rfind("include[", 0) == 0) return sourced.path.substr(0, sourced.path.find(']') + 1);
  return "axes";
}

bool contains(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

std::string join(const std::vector<std::string>& items) {
  std::string text;
  for (const auto& item : items) text += (text.empty() ? "" : ", ") + item;
  return text;
}

std::string index_path(const std::string& base, std::size_t i) { return base + "[" + std::to_string(i) + "]"; }

std::string describe(const json& value) {
  std::string text = value.dump();
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return text;
}

void check_setting_key(const std::string& key, const std::string& path) {
  if (!contains(kSettingKeys, key))
    throw SpecError(path, "unknown setting '" + key + "'; allowed: " + join(kSettingKeys));
}

/// Reads typed settings of one run, naming the path of any invalid value.
class Resolver {
 public:
  Resolver(const Point& point, const BuildFacts& build) : point_(point), build_(build) {}

  const Sourced* find(const std::string& key) const {
    const auto it = point_.find(key);
    return it == point_.end() ? nullptr : &it->second;
  }

  std::string path_of(const std::string& key) const {
    const Sourced* s = find(key);
    return s ? s->path : key;
  }

  std::string choice(const std::string& key, const std::vector<std::string>& allowed, const std::string& fallback,
                     const std::string& what = "value") const {
    const Sourced* s = find(key);
    if (!s) {
      if (fallback.empty()) throw SpecError(key, "missing required setting; allowed values: " + join(allowed));
      return fallback;
    }
    if (!s->value.is_string())
      throw SpecError(s->path, "expected a string, found " + describe(s->value) + "; allowed: " + join(allowed));
    const std::string value = s->value.get<std::string>();
    if (!contains(allowed, value))
      throw SpecError(s->path, "unknown " + what + " '" + value + "'; allowed: " + join(allowed));
    return value;
  }

  long integer(const std::string& key, long fallback, long lo, long hi) const {
    const Sourced* s = find(key);
    if (!s) return fallback;
    const bool too_large = s->value.is_number_unsigned() &&
                           s->value.get<unsigned long>() > static_cast<unsigned long>(hi);
    if (!s->value.is_number_integer() || too_large || s->value.get<long>() < lo || s->value.get<long>() > hi)
      throw SpecError(s->path, "expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                                   "], found " + describe(s->value));
    return s->value.get<long>();
  }

  double positive_real(const std::string& key, double fallback) const {
    const Sourced* s = find(key);
    if (!s) return fallback;
    if (!s->value.is_number() || !(s->value.get<double>() > 0))
      throw SpecError(s->path, "expected a number > 0, found " + describe(s->value));
    return s->value.get<double>();
  }

 private:
  const Point& point_;
  const BuildFacts& build_;
};

std::string resolve_input(const Resolver& r) {
  const Sourced* s = r.find("input");
  if (!s) return "gaussian";
  const std::string hint = "expected \"gaussian\" or {\"text\": \"<path of a text file>\"}";
  if (s->value.is_string()) {
    if (s->value.get<std::string>() == "gaussian") return "gaussian";
    throw SpecError(s->path, "unknown input " + describe(s->value) + "; " + hint);
  }
  if (!s->value.is_object() || s->value.size() != 1 || !s->value.contains("text") || !s->value["text"].is_string())
    throw SpecError(s->path, "invalid input " + describe(s->value) + "; " + hint);
  const std::string file = s->value["text"].get<std::string>();
  std::error_code error;
  if (std::filesystem::exists(file, error) && !std::filesystem::is_regular_file(file, error))
    throw SpecError(s->path + ".text", "'" + file + "' is not a regular file; give the path of a text file");
  std::ifstream stream(file, std::ios::binary);
  if (!stream) throw SpecError(s->path + ".text", "cannot read text file '" + file + "': " + std::strerror(errno));
  if (stream.peek() == std::ifstream::traits_type::eof())
    throw SpecError(s->path + ".text", "text file '" + file + "' is empty; choose a file with content");
  return "text:" + file;
}

std::map<std::string, double> resolve_cell_params(const Resolver& r, const std::string& cell,
                                                  const BuildFacts& build) {
  std::map<std::string, double> params;
  const Sourced* s = r.find("cell_params");
  if (!s) return params;
  if (!s->value.is_object())
    throw SpecError(s->path, "expected an object of parameter names and numbers, found " + describe(s->value));
  const auto known = build.cell_parameters.count(cell) ? build.cell_parameters.at(cell) : std::vector<std::string>{};
  for (const auto& item : s->value.items()) {
    if (!contains(known, item.key()))
      throw SpecError(s->path + "." + item.key(), "cell '" + cell + "' has no parameter '" + item.key() +
                                                      "'; its parameters: " + (known.empty() ? "none" : join(known)));
    if (!item.value().is_number())
      throw SpecError(s->path + "." + item.key(), "expected a number, found " + describe(item.value()));
    params[item.key()] = item.value().get<double>();
  }
  return params;
}

/// Settings of the iterative family: block size, damping, ELK's noise,
/// divergence handling and hybrid chunking.
void resolve_solver_family(const Resolver& r, RunSettings& run) {
  if (const Sourced* s = r.find("block_size")) {
    run.block_size = static_cast<int>(r.integer("block_size", 0, 1, run.state_dim));
    if (run.state_dim % run.block_size != 0)
      throw SpecError(s->path, "block_size " + std::to_string(run.block_size) + " does not divide state_dim " +
                                   std::to_string(run.state_dim) + "; choose a divisor of state_dim");
  } else if (run.jacobian == "block") {
    throw SpecError(r.path_of("jacobian"), "jacobian 'block' needs block_size, a divisor of state_dim");
  }

  if (const Sourced* s = r.find("damping")) {
    if (!s->value.is_number() || !(s->value.get<double>() >= 0 && s->value.get<double>() < 1))
      throw SpecError(s->path, "expected a damping κ in [0, 1), found " + describe(s->value));
    run.damping = s->value.get<double>();
  }
  run.elk_noise = r.positive_real("elk_noise", 1.0);
  run.on_divergence = r.choice("on_divergence", {"stop", "reset"}, "stop", "on_divergence");

  if (r.find("chunk_size")) run.chunk_size = static_cast<int>(r.integer("chunk_size", 0, 1, run.sequence_length));
  run.chunk_mode = r.choice("chunk_mode", {"sequential_within", "parallel_within"}, "sequential_within", "chunk_mode");
  if (run.solver == "sequential" && (run.chunk_size > 0 || run.damping > 0))
    throw SpecError(r.path_of(run.chunk_size > 0 ? "chunk_size" : "damping"),
                    "solver 'sequential' takes no chunk_size or damping; pair them with iterative solvers in a zip");
  if (run.solver == "elk" && run.chunk_size > 0 && run.chunk_mode == "sequential_within")
    throw SpecError(r.path_of("chunk_mode"),
                    "solver 'elk' with chunk_mode 'sequential_within' is not implemented; use 'parallel_within'");
}

/// Settings of the backward pass; read only for pass "forward_backward", so
/// one spec can sweep `pass` with fixed backward settings.
void resolve_backward(const Resolver& r, RunSettings& run, const BuildFacts& build) {
  run.pass = r.choice("pass", {"forward", "forward_backward"}, "forward", "pass");
  if (run.pass != "forward_backward") return;
  const auto vjp = build.cell_has_vjp.find(run.cell);
  if (vjp == build.cell_has_vjp.end() || !vjp->second)
    throw SpecError(r.path_of("pass"), "cell '" + run.cell +
                                           "' has no vjp, so pass 'forward_backward' cannot run on it; use pass "
                                           "'forward', or add vjp to the cell (docs/plugins.md, 'Backward pass')");
  run.loss = r.choice("loss", {"sum_squares", "readout"}, "sum_squares", "loss");
  run.backward = r.choice("backward", {"sequential", "scan", "jacobi", "chunked"}, "scan", "backward");
  run.backward_jacobian =
      r.choice("backward_jacobian", {"exact", "block", "diagonal", "identity", "zero"}, "exact", "backward_jacobian");
  if (const Sourced* s = r.find("backward_block_size")) {
    run.backward_block_size = static_cast<int>(r.integer("backward_block_size", 0, 1, run.state_dim));
    if (run.state_dim % run.backward_block_size != 0)
      throw SpecError(s->path, "backward_block_size " + std::to_string(run.backward_block_size) +
                                   " does not divide state_dim " + std::to_string(run.state_dim) +
                                   "; choose a divisor of state_dim");
  } else if (run.backward_jacobian == "block") {
    throw SpecError(r.path_of("backward_jacobian"),
                    "backward_jacobian 'block' needs backward_block_size, a divisor of state_dim");
  }
  run.backward_iterations = static_cast<int>(r.integer("backward_iterations", 1, 1, run.sequence_length));
  if (r.find("backward_chunk_size"))
    run.backward_chunk_size = static_cast<int>(r.integer("backward_chunk_size", 0, 1, run.sequence_length));
  else if (run.backward == "chunked")
    throw SpecError(r.path_of("backward"), "backward 'chunked' needs backward_chunk_size in [1, sequence_length]");
  run.backward_chunk_mode = r.choice("backward_chunk_mode", {"sequential_within", "parallel_within"},
                                     "sequential_within", "backward_chunk_mode");
}

std::string hash_hex(const std::string& text) {
  std::uint64_t hash = 0xcbf29ce484222325ull;  // FNV-1a, 64 bit
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 0x100000001b3ull;
  }
  char buffer[9];
  std::snprintf(buffer, sizeof buffer, "%08x", static_cast<unsigned>(hash ^ (hash >> 32)));
  return buffer;
}

/// Returns the value a setting takes when the spec leaves it out. Some defaults
/// depend on other settings of the same run (jacobian on solver, threads on
/// backend, input_dim on state_dim, tolerances on dtype). Returns null for
/// settings without a default (cell).
json default_for(const std::string& key, const Point& point, const BuildFacts& build) {
  const auto raw = [&](const std::string& other, const json& fallback) {
    const auto it = point.find(other);
    return it == point.end() ? fallback : it->second.value;
  };
  if (key == "solver") return "newton";
  if (key == "jacobian") {
    const json solver = raw("solver", "newton");
    if (solver == "sequential") return "none";
    if (solver == "jacobi") return "zero";
    return "exact";
  }
  if (key == "backend") return contains(build.backends, "openmp") ? "openmp" : build.backends.front();
  if (key == "threads") return raw("backend", default_for("backend", point, build)) == "serial" ? 1 : build.hardware_threads;
  if (key == "sequence_length") return 1024;
  if (key == "state_dim") return 64;
  if (key == "input_dim") return raw("state_dim", 64);
  if (key == "batch") return 1;
  if (key == "dtype") return "float32";
  if (key == "seed") return 0;
  if (key == "max_iterations") return 100;
  if (key == "tolerance" || key == "prefix_tolerance") return raw("dtype", "float32") == "float64" ? 1e-10 : 1e-5;
  if (key == "initial_guess") return "zeros";
  if (key == "input") return "gaussian";
  if (key == "scan_chunks") return "auto";
  if (key == "save_states") return false;
  if (key == "block_size") return 0;
  if (key == "damping") return 0.0;
  if (key == "elk_noise") return 1.0;
  if (key == "on_divergence") return "stop";
  if (key == "chunk_size") return 0;
  if (key == "chunk_mode") return "sequential_within";
  if (key == "pass") return "forward";
  if (key == "loss") return "sum_squares";
  if (key == "backward") return "scan";
  if (key == "backward_jacobian") return "exact";
  if (key == "backward_block_size") return 0;
  if (key == "backward_iterations") return 1;
  if (key == "backward_chunk_size") return 0;
  if (key == "backward_chunk_mode") return "sequential_within";
  if (key == "cell_params") return json::object();
  return nullptr;
}

RunSettings resolve(const Point& point, int index, const BuildFacts& build) {
  const Resolver r(point, build);
  RunSettings run;
  run.index = index;
  run.cell = r.choice("cell", build.cells, "", "cell");
  const auto fallback = [&](const std::string& key) { return default_for(key, point, build); };
  run.solver = r.choice("solver", {"sequential", "jacobi", "newton", "elk"}, fallback("solver"), "solver");
  run.jacobian = r.choice("jacobian", {"none", "zero", "identity", "diagonal", "block", "exact"}, fallback("jacobian"),
                          "jacobian");
  if (run.solver == "sequential" && run.jacobian != "none")
    throw SpecError(r.path_of("jacobian"), "jacobian '" + run.jacobian +
                                               "' does not apply to solver 'sequential'; use 'none' or leave it out");
  if (run.solver == "jacobi" && run.jacobian != "zero")
    throw SpecError(r.path_of("jacobian"), "solver 'jacobi' uses jacobian 'zero', found '" + run.jacobian +
                                               "'; use solver 'newton' for other approximations");
  if (run.solver == "newton" && run.jacobian == "none")
    throw SpecError(r.path_of("jacobian"),
                    "solver 'newton' needs a jacobian: zero, identity, diagonal, block or exact");
  if (run.solver == "elk") {
    const auto structure = build.cell_structures.find(run.cell);
    const bool diagonal_cell = structure != build.cell_structures.end() && structure->second == "diagonal";
    if (!(run.jacobian == "diagonal" || (run.jacobian == "exact" && diagonal_cell)))
      throw SpecError(r.path_of("jacobian"),
                      "solver 'elk' is built for diagonal Jacobians (quasi-ELK): use jacobian 'diagonal', or 'exact' "
                      "on a cell with a diagonal Jacobian; ELK with jacobian '" + run.jacobian + "' on cell '" +
                          run.cell + "' is not implemented");
  }

  run.backend = r.choice("backend", build.backends, fallback("backend"), "backend (built into this parascan)");
  run.threads = static_cast<int>(r.integer("threads", fallback("threads").get<long>(), 1, 4096));
  if (run.backend == "serial" && run.threads != 1)
    throw SpecError(r.path_of("threads"), "backend 'serial' runs on 1 thread, found " + std::to_string(run.threads) +
                                              "; set threads to 1 or pair threads with backends in a zip");

  constexpr long kMaxInt = std::numeric_limits<int>::max();
  run.sequence_length = static_cast<int>(r.integer("sequence_length", fallback("sequence_length").get<long>(), 1, kMaxInt));
  run.state_dim = static_cast<int>(r.integer("state_dim", fallback("state_dim").get<long>(), 1, 1 << 20));
  run.input_dim = static_cast<int>(r.integer("input_dim", run.state_dim, 1, 1 << 20));
  run.batch = static_cast<int>(r.integer("batch", fallback("batch").get<long>(), 1, kMaxInt));
  if (static_cast<long>(run.batch) * run.sequence_length > kMaxInt)
    throw SpecError(r.path_of("batch"), "batch × sequence_length = " +
                                            std::to_string(static_cast<long>(run.batch) * run.sequence_length) +
                                            " exceeds " + std::to_string(kMaxInt) + "; reduce one of them");
  run.dtype = r.choice("dtype", {"float32", "float64"}, fallback("dtype"), "dtype");
  run.seed = static_cast<std::uint64_t>(r.integer("seed", 0, 0, std::numeric_limits<long>::max()));
  run.max_iterations = static_cast<int>(r.integer("max_iterations", fallback("max_iterations").get<long>(), 0, kMaxInt));
  run.tolerance = r.positive_real("tolerance", fallback("tolerance").get<double>());
  run.prefix_tolerance = r.positive_real("prefix_tolerance", fallback("prefix_tolerance").get<double>());
  run.initial_guess = r.choice("initial_guess", {"zeros", "step_from_zero"}, fallback("initial_guess"), "initial_guess");
  run.input = resolve_input(r);

  if (const Sourced* s = r.find("scan_chunks"); s && s->value.is_string()) {
    if (s->value.get<std::string>() != "auto")
      throw SpecError(s->path, "expected \"auto\" or an integer >= 1, found " + describe(s->value));
  } else {
    run.scan_chunks = static_cast<int>(r.integer("scan_chunks", 0, 1, run.sequence_length));
  }
  if (const Sourced* s = r.find("save_states")) {
    if (!s->value.is_boolean()) throw SpecError(s->path, "expected true or false, found " + describe(s->value));
    run.save_states = s->value.get<bool>();
  }
  run.cell_params = resolve_cell_params(r, run.cell, build);
  resolve_solver_family(r, run);
  resolve_backward(r, run, build);

  json& j = run.json;
  j["cell"] = run.cell;
  j["solver"] = run.solver;
  j["jacobian"] = run.jacobian;
  j["backend"] = run.backend;
  j["threads"] = run.threads;
  j["sequence_length"] = run.sequence_length;
  j["state_dim"] = run.state_dim;
  j["input_dim"] = run.input_dim;
  j["batch"] = run.batch;
  j["dtype"] = run.dtype;
  j["seed"] = run.seed;
  j["max_iterations"] = run.max_iterations;
  j["tolerance"] = run.tolerance;
  j["prefix_tolerance"] = run.prefix_tolerance;
  j["initial_guess"] = run.initial_guess;
  j["input"] = run.input;
  j["scan_chunks"] = run.scan_chunks == 0 ? json("auto") : json(run.scan_chunks);
  j["save_states"] = run.save_states;
  j["cell_params"] = json::object();
  for (const auto& [key, value] : run.cell_params) j["cell_params"][key] = value;
  j["block_size"] = run.block_size;
  j["damping"] = run.damping;
  j["elk_noise"] = run.elk_noise;
  j["on_divergence"] = run.on_divergence;
  j["chunk_size"] = run.chunk_size;
  j["chunk_mode"] = run.chunk_mode;
  // Backward settings only where they act, so that forward runs keep the
  // settings (and run ids) they had before the backward pass existed.
  if (run.pass == "forward_backward") {
    j["pass"] = run.pass;
    j["loss"] = run.loss;
    j["backward"] = run.backward;
    j["backward_jacobian"] = run.backward_jacobian;
    j["backward_block_size"] = run.backward_block_size;
    j["backward_iterations"] = run.backward_iterations;
    j["backward_chunk_size"] = run.backward_chunk_size;
    j["backward_chunk_mode"] = run.backward_chunk_mode;
  }

  return run;
}

/// Adds one zip group (equal-length lists, paired by position) to every point.
std::vector<Point> apply_zip(const std::vector<Point>& points, const json& group, const std::string& path,
                             const Point& fixed, const std::vector<std::string>& used) {
  if (!group.is_object() || group.empty())
    throw SpecError(path, "expected an object of equal-length lists, found " + describe(group));
  std::size_t length = 0;
  std::string first_key;
  for (const auto& item : group.items()) {
    const std::string key_path = path + "." + item.key();
    check_setting_key(item.key(), key_path);
    if (fixed.count(item.key()) || contains(used, item.key()))
      throw SpecError(key_path, "'" + item.key() + "' is already set elsewhere in the spec; set it in one place");
    if (!item.value().is_array() || item.value().empty())
      throw SpecError(key_path, "expected a non-empty list, found " + describe(item.value()));
    if (first_key.empty()) {
      first_key = item.key();
      length = item.value().size();
    } else if (item.value().size() != length) {
      throw SpecError(key_path, "zip lists must have equal lengths: '" + first_key + "' has " +
                                    std::to_string(length) + ", '" + item.key() + "' has " +
                                    std::to_string(item.value().size()));
    }
  }
  std::vector<Point> result;
  for (const auto& point : points) {
    for (std::size_t i = 0; i < length; ++i) {
      Point next = point;
      for (const auto& item : group.items())
        assign(next, item.key(), item.value()[i], index_path(path + "." + item.key(), i));
      result.push_back(std::move(next));
    }
  }
  return result;
}

/// True when every key of the pattern equals the point's value, or the
/// default value for keys the point leaves out.
bool matches(const Point& point, const json& pattern, const BuildFacts& build) {
  for (const auto& item : pattern.items()) {
    const auto it = point.find(item.key());
    const json value = it == point.end() ? default_for(item.key(), point, build) : it->second.value;
    if (value != item.value()) return false;
  }
  return true;
}

}  // namespace

Spec parse_spec(const std::string& text, const std::string& origin, const BuildFacts& build,
                const ExpandOptions& options) {
  // JSON allows repeated keys and nlohmann keeps the last one. In a spec a
  // repeated key is almost always a mistake, so it is an error.
  std::vector<std::vector<std::string>> open_objects;
  std::string duplicate_key;
  const json::parser_callback_t reject_duplicates = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) open_objects.emplace_back();
    if (event == json::parse_event_t::object_end && !open_objects.empty()) open_objects.pop_back();
    if (event == json::parse_event_t::key && !open_objects.empty()) {
      const std::string key = parsed.get<std::string>();
      if (contains(open_objects.back(), key) && duplicate_key.empty()) duplicate_key = key;
      open_objects.back().push_back(key);
    }
    return true;
  };
  json root;
  try {
    root = json::parse(text, reject_duplicates);
  } catch (const json::parse_error& error) {
    throw SpecError("", origin + " is not valid JSON: " + error.what());
  }
  if (!duplicate_key.empty())
    throw SpecError(duplicate_key, "the key '" + duplicate_key + "' appears twice in one object; keep one");
  if (!root.is_object()) throw SpecError("", origin + ": expected a JSON object at the top level");

  Spec spec;
  spec.path = origin;
  spec.text = text;

  // Top-level keys: structure keys or fixed settings.
  Point fixed;
  for (const auto& item : root.items()) {
    if (contains(kStructureKeys, item.key())) continue;
    if (!contains(kSettingKeys, item.key()))
      throw SpecError(item.key(), "unknown key '" + item.key() + "'; allowed: " + join(kStructureKeys) + ", " +
                                      join(kSettingKeys));
    assign(fixed, item.key(), item.value(), item.key());
  }

  if (!root.contains("name") || !root["name"].is_string())
    throw SpecError("name", "missing or not a string; give the sweep a name, used for the output file name");
  spec.name = root["name"].get<std::string>();
  if (!std::regex_match(spec.name, std::regex("[A-Za-z0-9][A-Za-z0-9_.-]*")))
    throw SpecError("name", "invalid name '" + spec.name +
                                "'; use letters, digits, '_', '.' and '-', starting with a letter or digit");
  if (root.contains("description") && !root["description"].is_string())
    throw SpecError("description", "expected a string, found " + describe(root["description"]));

  long max_runs = kDefaultMaxRuns;
  if (root.contains("max_runs")) {
    if (!root["max_runs"].is_number_integer() || root["max_runs"].get<double>() < 1 ||
        root["max_runs"].get<double>() > static_cast<double>(std::numeric_limits<int>::max()))
      throw SpecError("max_runs", "expected an integer in [1, " + std::to_string(std::numeric_limits<int>::max()) +
                                      "], found " + describe(root["max_runs"]));
    max_runs = root["max_runs"].get<long>();
  }
  // The command line's --max-runs replaces the spec's cap, and errors about
  // the cap then name the option instead of the spec key.
  const std::string cap_name = options.max_runs > 0 ? "--max-runs" : "max_runs";
  if (options.max_runs > 0) max_runs = options.max_runs;

  if (root.contains("repeats")) {
    if (!root["repeats"].is_number_integer() || root["repeats"].get<double>() < 1 ||
        root["repeats"].get<double>() > static_cast<double>(std::numeric_limits<int>::max()))
      throw SpecError("repeats", "expected an integer >= 1, found " + describe(root["repeats"]));
    spec.repeats = root["repeats"].get<int>();
  }
  if (static_cast<double>(spec.repeats) > static_cast<double>(max_runs))
    throw SpecError("repeats", std::to_string(spec.repeats) + " repeats exceed " + cap_name + " = " +
                                   std::to_string(max_runs) + "; lower repeats or raise " + cap_name);
  // Exclude may prune the product afterwards, but a product far beyond the
  // cap is refused before it is built, so it cannot exhaust memory.
  const long max_points = 100 * max_runs;
  const auto check_product = [&](const std::string& path, std::size_t size) {
    if (static_cast<long>(size) > max_points)
      throw SpecError(path, "the product expands to more than " + std::to_string(max_points) +
                                " points before exclude (100 × " + cap_name + " = " + std::to_string(max_runs) +
                                "); raise " + cap_name + " or remove axis values");
  };

  // Cartesian product of the axes, first axis outermost.
  std::vector<Point> points = {fixed};
  std::vector<std::string> used;
  if (root.contains("axes")) {
    const json& axes = root["axes"];
    if (!axes.is_object()) throw SpecError("axes", "expected an object of lists, found " + describe(axes));
    for (const auto& item : axes.items()) {
      const std::string path = "axes." + item.key();
      check_setting_key(item.key(), path);
      if (fixed.count(item.key()))
        throw SpecError(path, "'" + item.key() + "' is both a fixed setting and an axis; keep one");
      if (!item.value().is_array() || item.value().empty())
        throw SpecError(path, "expected a non-empty list, found " + describe(item.value()));
      for (std::size_t i = 1; i < item.value().size(); ++i)
        for (std::size_t k = 0; k < i; ++k)
          if (item.value()[i] == item.value()[k])
            throw SpecError(index_path(path, i), "duplicate value " + describe(item.value()[i]) + ", also at " +
                                                     index_path(path, k) + "; list each value once");
      check_product(path, points.size() * item.value().size());
      std::vector<Point> next;
      for (const auto& point : points)
        for (std::size_t i = 0; i < item.value().size(); ++i) {
          Point p = point;
          assign(p, item.key(), item.value()[i], index_path(path, i));
          next.push_back(std::move(p));
        }
      points = std::move(next);
      used.push_back(item.key());
    }
  }

  if (root.contains("zip")) {
    const json& zip = root["zip"];
    if (zip.is_array()) {
      for (std::size_t g = 0; g < zip.size(); ++g) {
        if (zip[g].is_object() && !zip[g].empty() && zip[g].begin().value().is_array())
          check_product(index_path("zip", g), points.size() * zip[g].begin().value().size());
        points = apply_zip(points, zip[g], index_path("zip", g), fixed, used);
        for (const auto& item : zip[g].items()) used.push_back(item.key());
      }
    } else {
      if (zip.is_object() && !zip.empty() && zip.begin().value().is_array())
        check_product("zip", points.size() * zip.begin().value().size());
      points = apply_zip(points, zip, "zip", fixed, used);
      for (const auto& item : zip.items()) used.push_back(item.key());
    }
  }

  if (root.contains("exclude")) {
    const json& exclude = root["exclude"];
    if (!exclude.is_array()) throw SpecError("exclude", "expected a list of objects, found " + describe(exclude));
    for (std::size_t i = 0; i < exclude.size(); ++i) {
      const std::string path = index_path("exclude", i);
      if (!exclude[i].is_object() || exclude[i].empty())
        throw SpecError(path, "expected an object of settings to match, found " + describe(exclude[i]));
      for (const auto& item : exclude[i].items()) check_setting_key(item.key(), path + "." + item.key());
      points.erase(std::remove_if(points.begin(), points.end(),
                                  [&](const Point& p) { return matches(p, exclude[i], build); }),
                   points.end());
    }
  }

  if (root.contains("include")) {
    const json& include = root["include"];
    if (!include.is_array()) throw SpecError("include", "expected a list of objects, found " + describe(include));
    for (std::size_t i = 0; i < include.size(); ++i) {
      const std::string path = index_path("include", i);
      if (!include[i].is_object()) throw SpecError(path, "expected an object of settings, found " + describe(include[i]));
      Point p = fixed;
      for (const auto& item : include[i].items()) {
        check_setting_key(item.key(), path + "." + item.key());
        assign(p, item.key(), item.value(), path + "." + item.key());
      }
      points.push_back(std::move(p));
    }
  }

  const long run_count = static_cast<long>(points.size()) * spec.repeats;
  if (run_count > max_runs)
    throw SpecError(cap_name, "the spec expands to " + std::to_string(run_count) + " runs (" +
                                  std::to_string(points.size()) + " points × " + std::to_string(spec.repeats) +
                                  " repeats), more than " + cap_name + " = " + std::to_string(max_runs) + "; raise " +
                                  cap_name + " or remove axis values");
  if (points.empty()) throw SpecError("exclude", "every run is excluded; the sweep would be empty");

  std::vector<RunSettings> point_runs;
  for (std::size_t i = 0; i < points.size(); ++i) point_runs.push_back(resolve(points[i], static_cast<int>(i), build));

  // Two identical points would write the same run twice. The later point is
  // the one to remove, and an include entry names itself.
  std::map<std::string, int> seen;
  for (const auto& run : point_runs) {
    const auto [it, inserted] = seen.emplace(run.json.dump(), run.index);
    if (inserted) continue;
    const std::string origin = origin_of(points[run.index]);
    if (origin.rfind("include[", 0) == 0)
      throw SpecError(origin, "adds no new run: its settings equal those of point " + std::to_string(it->second) +
                                  " of the expansion; remove this include entry or change one of its values");
    throw SpecError(origin, "points " + std::to_string(it->second) + " and " + std::to_string(run.index) +
                                " have identical settings; remove the duplicate");
  }

  // Repeats run the whole expansion again, so raising `repeats` appends runs
  // and keeps the index (and id) of every earlier run.
  for (int repeat = 0; repeat < spec.repeats; ++repeat) {
    for (const auto& point_run : point_runs) {
      RunSettings run = point_run;
      run.index = static_cast<int>(spec.runs.size());
      run.repeat = repeat;
      run.run_seed = derive_run_seed(run.seed, repeat);
      run.json["repeat"] = repeat;
      char prefix[16];
      std::snprintf(prefix, sizeof prefix, "r%04d-", run.index);
      run.id = prefix + hash_hex(run.json.dump());
      spec.runs.push_back(std::move(run));
    }
  }
  return spec;
}

std::uint64_t derive_run_seed(std::uint64_t seed, int repeat) {
  if (repeat == 0) return seed;
  // SplitMix64 finaliser over seed and repeat, so that nearby seeds and
  // repeats give unrelated streams. The top bit is cleared because HDF5
  // attributes and settings_json store the seed as a signed 64-bit integer.
  std::uint64_t z = seed + 0x9e3779b97f4a7c15ull * (static_cast<std::uint64_t>(repeat) + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return z & 0x7fffffffffffffffull;
}

const std::vector<std::string>& setting_keys() { return kSettingKeys; }

const std::vector<std::string>& structure_keys() { return kStructureKeys; }

std::string describe_options(const json& settings) {
  std::string text;
  const auto add = [&](const std::string& item) { text += (text.empty() ? "" : " ") + item; };
  const auto number = [](const json& value) { return value.dump(); };
  if (settings.value("block_size", 0) > 0) add("block=" + number(settings["block_size"]));
  if (settings.value("damping", 0.0) > 0) add("damping=" + number(settings["damping"]));
  if (settings.value("solver", "") == "elk") add("elk_noise=" + number(settings["elk_noise"]));
  if (settings.value("on_divergence", "stop") == "reset") add("reset");
  if (settings.value("chunk_size", 0) > 0)
    add("chunk=" + number(settings["chunk_size"]) + ":" + settings.value("chunk_mode", std::string()));
  if (settings.value("pass", "forward") == "forward_backward") {
    std::string backward = "backward=" + settings.value("backward", std::string());
    if (settings.value("backward_jacobian", "exact") != "exact") backward += ":" + settings.value("backward_jacobian", std::string());
    if (settings.value("backward", "") == "jacobi") backward += ":k=" + number(settings["backward_iterations"]);
    if (settings.value("backward", "") == "chunked")
      backward += ":c=" + number(settings["backward_chunk_size"]) + ":" + settings.value("backward_chunk_mode", std::string());
    add(backward);
    add("loss=" + settings.value("loss", std::string()));
  }
  if (settings.contains("cell_params") && settings["cell_params"].is_object())
    for (const auto& item : settings["cell_params"].items()) add(item.key() + "=" + number(item.value()));
  return text;
}

Spec load_spec(const std::string& path, const BuildFacts& build, const ExpandOptions& options) {
  std::ifstream stream(path, std::ios::binary);
  if (!stream) throw SpecError("", "cannot read spec file '" + path + "': " + std::strerror(errno));
  std::stringstream text;
  text << stream.rdbuf();
  return parse_spec(text.str(), path, build, options);
}

}  // namespace parascan::detail
