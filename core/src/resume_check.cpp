#include "resume_check.hpp"

#include <filesystem>
#include <stdexcept>

#include "hdf5_tools.hpp"

namespace parascan::detail {
namespace {

using json = nlohmann::ordered_json;

/// "sequence_length: 64 -> 128, seed: 0 -> 1" for the settings that differ.
std::string describe_setting_changes(const json& before, const json& after) {
  std::string text;
  const auto add = [&](const std::string& key, const std::string& old_value, const std::string& new_value) {
    text += (text.empty() ? "" : ", ") + key + ": " + old_value + " -> " + new_value;
  };
  for (const auto& item : after.items()) {
    if (item.key() == "run_id") continue;
    if (!before.contains(item.key()))
      add(item.key(), "(none)", item.value().dump());
    else if (before[item.key()] != item.value())
      add(item.key(), before[item.key()].dump(), item.value().dump());
  }
  for (const auto& item : before.items())
    if (item.key() != "run_id" && !after.contains(item.key())) add(item.key(), item.value().dump(), "(none)");
  return text;
}

void append_limited(std::string& text, const std::string& title, const std::vector<std::string>& items,
                    std::size_t limit) {
  if (items.empty()) return;
  text += "\n  " + title + " (" + std::to_string(items.size()) + "):";
  for (std::size_t i = 0; i < items.size() && i < limit; ++i) text += "\n    " + items[i];
  if (items.size() > limit) text += "\n    ... and " + std::to_string(items.size() - limit) + " more";
}

}  // namespace

ExpansionChanges compare_with_sweep_file(const std::string& sweep_path, const Spec& spec) {
  ExpansionChanges changes;
  std::error_code error;
  if (!std::filesystem::exists(sweep_path, error)) return changes;

  json old_runs;
  try {
    const h5::Handle file = h5::open_read_only(sweep_path);
    old_runs = json::parse(h5::read_string_dataset(file, "expanded_spec"));
  } catch (const std::exception& failure) {
    throw std::runtime_error("cannot read /expanded_spec of the existing sweep file '" + sweep_path +
                             "' to compare it with the spec: " + failure.what() +
                             "; move the file away or pass --force-new");
  }
  if (!old_runs.is_array())
    throw std::runtime_error("/expanded_spec of '" + sweep_path + "' is not a JSON array; move the file away");

  for (std::size_t i = 0; i < spec.runs.size() || i < old_runs.size(); ++i) {
    if (i >= old_runs.size()) {
      changes.added.push_back(spec.runs[i].id);
      continue;
    }
    const std::string old_id = old_runs[i].value("run_id", std::string("(no run_id)"));
    if (i >= spec.runs.size()) {
      changes.removed.push_back(old_id);
      continue;
    }
    if (old_id == spec.runs[i].id) continue;
    json new_entry = spec.runs[i].json;
    changes.changed.push_back(old_id + " -> " + spec.runs[i].id + " (" +
                              describe_setting_changes(old_runs[i], new_entry) + ")");
  }
  return changes;
}

std::string describe_changes(const ExpansionChanges& changes, std::size_t limit) {
  std::string text;
  append_limited(text, "added", changes.added, limit);
  append_limited(text, "removed", changes.removed, limit);
  append_limited(text, "changed", changes.changed, limit);
  return text;
}

}  // namespace parascan::detail
