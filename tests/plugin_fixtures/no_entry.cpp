// A well-formed shared library that exports a function, but not
// parascan_plugin_entry, so the loader must skip it.
extern "C" int parascan_fixture_answer() { return 42; }
