#!/usr/bin/env bash
# Install the Debian packages that parascan builds against and provide Kokkos 3.4.01
# (Serial and OpenMP backends, shared libraries, C++17).
#
# Usage: scripts/setup.sh            (as root on Debian 12, unless everything is installed)
#        eval "$(scripts/setup.sh)"  (sets Kokkos_DIR in the calling shell)
#
# Kokkos comes from the first of these that exists:
#   1. PARASCAN_KOKKOS_DIR: a folder containing KokkosConfig.cmake, or an install prefix.
#   2. An install that find_package(Kokkos) finds through the Kokkos_DIR or
#      CMAKE_PREFIX_PATH environment variables.
#   3. The cached build in $PARASCAN_CACHE/kokkos-3.4.01-serial-openmp.
#   4. A new build of packages/kokkos from Debian's trilinos source package, which this
#      script downloads with apt-get source and installs into that cache folder.
#
# Environment:
#   PARASCAN_CACHE        cache folder (default: $HOME/.cache/parascan)
#   PARASCAN_KOKKOS_DIR   Kokkos install to use instead of building one
#   PARASCAN_JOBS         parallel compile jobs for the Kokkos build (default: nproc)
#
# Progress messages go to stderr with a "setup:" prefix. The last line on stdout is
# "Kokkos_DIR=<folder containing KokkosConfig.cmake>", and the same folder is written to
# $PARASCAN_CACHE/kokkos_dir.
set -euo pipefail

readonly KOKKOS_VERSION=3.4.01
readonly APT_PACKAGES=(
  build-essential cmake git pkg-config dpkg-dev
  libhdf5-dev nlohmann-json3-dev catch2 libbenchmark-dev libcli11-dev
  libspdlog-dev libfmt-dev libopenblas-dev libopenblas-openmp-dev
  python3-numpy python3-h5py python3-matplotlib python3-pytest python3-torch
  chromium  # renders the analysis report page headless in tests/python
)

CACHE_DIR="${PARASCAN_CACHE:-$HOME/.cache/parascan}"
KOKKOS_PREFIX="$CACHE_DIR/kokkos-$KOKKOS_VERSION-serial-openmp"
# Scratch space for the Kokkos build. It is on the same file system as KOKKOS_PREFIX,
# so the finished install can be moved into place with one rename.
WORK_DIR="$CACHE_DIR/work/kokkos-$KOKKOS_VERSION"
JOBS="${PARASCAN_JOBS:-$(nproc)}"

current_step="start"
step_hint=""
error_reported=0

log() {
  printf 'setup: %s\n' "$*" >&2
}

# Print an error for the current step and exit.
die() {
  log "error in step '$current_step': $*"
  error_reported=1
  exit 1
}

report_unexpected_failure() {
  local status=$?
  if ((status != 0 && error_reported == 0)); then
    log "error in step '$current_step': a command failed with exit status $status."
    if [[ -n "$step_hint" ]]; then
      log "$step_hint"
    fi
  fi
}
trap report_unexpected_failure EXIT

report_interruption() {
  log "interrupted during step '$current_step'. Rerun this script to finish the setup."
  error_reported=1
  exit 130
}
trap report_interruption INT TERM

begin_step() {
  current_step="$1"
  step_hint="$2"
}

# Print the seconds elapsed since START (an $EPOCHREALTIME value) with one decimal.
seconds_since() {
  awk -v start="$1" -v end="$EPOCHREALTIME" 'BEGIN { printf "%.1f", end - start }'
}

require_root() {
  if ((EUID != 0)); then
    die "$1 needs root. Run this script as root (for example with sudo)."
  fi
}

# ---------------------------------------------------------------------------
# Step 1: Debian packages
# ---------------------------------------------------------------------------

install_apt_packages() {
  begin_step "install Debian packages" \
    "Check the apt-get output above, then fix the apt sources or network access and rerun this script."

  local -a missing=()
  local package status
  for package in "${APT_PACKAGES[@]}"; do
    status="$(dpkg-query -W -f='${db:Status-Abbrev}' "$package" 2>/dev/null || true)"
    if [[ "$status" != "ii "* ]]; then
      missing+=("$package")
    fi
  done

  if ((${#missing[@]} == 0)); then
    log "all ${#APT_PACKAGES[@]} Debian packages are installed, so apt-get is skipped."
    return
  fi

  require_root "Installing ${missing[*]}"
  log "installing ${#missing[@]} missing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # DPkg::Lock::Timeout makes apt-get wait up to 600 s for a running apt-get or dpkg
  # to release the dpkg lock instead of failing at once. apt-get output goes to
  # stderr, so stdout contains only the final Kokkos_DIR line.
  apt-get -o DPkg::Lock::Timeout=600 update >&2
  apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}" >&2
}

# ---------------------------------------------------------------------------
# Step 2: Kokkos
# ---------------------------------------------------------------------------

# Print the folder containing KokkosConfig.cmake under PATH, which is either that folder
# or an install prefix. Print nothing when there is none.
find_kokkos_config_dir() {
  local path="$1" config
  if [[ -f "$path/KokkosConfig.cmake" ]]; then
    printf '%s\n' "$path"
    return
  fi
  for config in "$path"/lib*/cmake/Kokkos/KokkosConfig.cmake \
    "$path"/lib/*/cmake/Kokkos/KokkosConfig.cmake \
    "$path"/share/cmake/Kokkos/KokkosConfig.cmake; do
    if [[ -f "$config" ]]; then
      dirname "$config"
      return
    fi
  done
}

# Run find_package(Kokkos) in a throwaway CMake project that searches only the
# Kokkos_DIR and CMAKE_PREFIX_PATH environment variables, as a user's build would.
# Print the Kokkos_DIR that CMake chose and log its version and backends.
# Print nothing when CMake finds no Kokkos there.
find_kokkos_from_environment() {
  local probe_dir
  probe_dir="$(mktemp -d)"
  cat >"$probe_dir/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.16)
project(parascan_kokkos_probe LANGUAGES CXX)
find_package(Kokkos CONFIG QUIET
  NO_CMAKE_PATH NO_SYSTEM_ENVIRONMENT_PATH NO_CMAKE_PACKAGE_REGISTRY
  NO_CMAKE_SYSTEM_PATH NO_CMAKE_SYSTEM_PACKAGE_REGISTRY)
if(Kokkos_FOUND)
  message(STATUS "PROBE_KOKKOS_DIR=${Kokkos_DIR}")
  message(STATUS "PROBE_KOKKOS_INFO=version ${Kokkos_VERSION}, backends ${Kokkos_DEVICES}")
endif()
EOF
  local output
  output="$(cmake -S "$probe_dir" -B "$probe_dir/build" 2>&1 || true)"
  rm -rf "$probe_dir"

  local found_dir info
  found_dir="$(sed -n 's/^-- PROBE_KOKKOS_DIR=//p' <<<"$output")"
  info="$(sed -n 's/^-- PROBE_KOKKOS_INFO=//p' <<<"$output")"
  if [[ -n "$found_dir" ]]; then
    log "find_package(Kokkos) found $found_dir ($info)."
    if [[ "$info" != *OPENMP* ]]; then
      log "warning: that Kokkos install has no OpenMP backend, so parascan runs only on Kokkos::Serial."
    fi
    printf '%s\n' "$found_dir"
  fi
}

# Print the Kokkos_DIR of an install that the user provided, or nothing.
find_user_kokkos() {
  local config_dir
  if [[ -n "${PARASCAN_KOKKOS_DIR:-}" ]]; then
    config_dir="$(find_kokkos_config_dir "$PARASCAN_KOKKOS_DIR")"
    if [[ -z "$config_dir" ]]; then
      die "PARASCAN_KOKKOS_DIR=$PARASCAN_KOKKOS_DIR contains no KokkosConfig.cmake. Point it to the folder containing KokkosConfig.cmake or to the Kokkos install prefix, or unset it to build Kokkos $KOKKOS_VERSION."
    fi
    log "using the Kokkos install in PARASCAN_KOKKOS_DIR: $config_dir"
    printf '%s\n' "$config_dir"
    return
  fi

  if [[ -z "${Kokkos_DIR:-}" && -z "${CMAKE_PREFIX_PATH:-}" ]]; then
    return
  fi
  log "looking for Kokkos through Kokkos_DIR='${Kokkos_DIR:-}' and CMAKE_PREFIX_PATH='${CMAKE_PREFIX_PATH:-}'"
  config_dir="$(find_kokkos_from_environment)"
  if [[ -z "$config_dir" && -n "${Kokkos_DIR:-}" ]]; then
    die "find_package(Kokkos) found no Kokkos install through Kokkos_DIR=$Kokkos_DIR. Set it to the folder containing KokkosConfig.cmake, or unset it to build Kokkos $KOKKOS_VERSION."
  fi
  if [[ -z "$config_dir" ]]; then
    log "CMAKE_PREFIX_PATH contains no Kokkos install."
  fi
  printf '%s\n' "$config_dir"
}

# Write FILE from CONTENT (removing FILE when CONTENT is empty), only when it changed.
# Return 0 when the file changed and 1 when it was already up to date.
update_file() {
  local file="$1" content="$2"
  if [[ -z "$content" ]]; then
    if [[ -e "$file" ]]; then
      rm -f "$file"
      return 0
    fi
    return 1
  fi
  if [[ -f "$file" && "$(cat "$file")" == "$content" ]]; then
    return 1
  fi
  printf '%s\n' "$content" >"$file.tmp"
  mv "$file.tmp" "$file"
  return 0
}

# Add deb-src entries that mirror the machine's own deb entries, in files of their own,
# and run apt-get update.
enable_source_packages() {
  begin_step "enable Debian source packages" \
    "Check the apt sources in /etc/apt and the apt-get update output above, then rerun this script."
  require_root "Adding deb-src entries to the apt sources"

  local sourcelist sourceparts
  eval "$(apt-config shell sourcelist Dir::Etc::sourcelist/f sourceparts Dir::Etc::sourceparts/d)"
  sourceparts="${sourceparts%/}"
  local deb822_file="$sourceparts/parascan-src.sources"
  local oneline_file="$sourceparts/parascan-src.list"

  local -a deb822_inputs=() oneline_inputs=()
  local file
  for file in "$sourceparts"/*.sources; do
    if [[ -f "$file" && "$file" != "$deb822_file" ]]; then
      deb822_inputs+=("$file")
    fi
  done
  for file in "$sourcelist" "$sourceparts"/*.list; do
    if [[ -f "$file" && "$file" != "$oneline_file" ]]; then
      oneline_inputs+=("$file")
    fi
  done

  # Copy each enabled deb822 stanza whose Types include "deb" but not "deb-src",
  # with its Types set to deb-src. Other fields, Signed-By included, stay unchanged.
  local deb822_entries=""
  if ((${#deb822_inputs[@]} > 0)); then
    deb822_entries="$(awk '
      BEGIN { RS = ""; FS = "\n" }
      {
        types = ""; enabled = 1; body = ""
        for (i = 1; i <= NF; i++) {
          line = $i
          if (line ~ /^#/) continue
          if (tolower(line) ~ /^types:/) { types = " " substr(line, 7) " "; gsub(/[ \t]+/, " ", types); continue }
          if (tolower(line) ~ /^enabled:[ \t]*no[ \t]*$/) enabled = 0
          body = body line "\n"
        }
        if (enabled && types ~ / deb / && types !~ / deb-src /) {
          printf "%sTypes: deb-src\n%s", (count++ ? "\n" : ""), body
        }
      }' "${deb822_inputs[@]}")"
  fi

  # Turn each one-line "deb ..." entry into "deb-src ..." unless that entry exists.
  local oneline_entries=""
  if ((${#oneline_inputs[@]} > 0)); then
    oneline_entries="$(awk '
      /^[ \t]*deb-src[ \t]/ { sub(/^[ \t]*deb-src[ \t]+/, ""); have[$0] = 1; next }
      /^[ \t]*deb[ \t]/ { sub(/^[ \t]*deb[ \t]+/, ""); want[++n] = $0 }
      END { for (i = 1; i <= n; i++) if (!(want[i] in have)) print "deb-src " want[i] }
    ' "${oneline_inputs[@]}")"
  fi

  if [[ -z "$deb822_entries" && -z "$oneline_entries" ]]; then
    if ! grep -qsE '^[[:space:]]*(deb-src[[:space:]]|Types:.*deb-src)' "${oneline_inputs[@]}" "${deb822_inputs[@]}" /dev/null; then
      die "the apt sources in $sourcelist and $sourceparts contain no deb entries to derive deb-src entries from. Add the Debian archive to the apt sources, or set PARASCAN_KOKKOS_DIR to an existing Kokkos install."
    fi
  fi

  local -a written=()
  local header="# Written by parascan's scripts/setup.sh: deb-src copies of this machine's deb entries, used to fetch the trilinos source package for Kokkos."
  if update_file "$deb822_file" "${deb822_entries:+$header
$deb822_entries}"; then
    written+=("$deb822_file")
  fi
  if update_file "$oneline_file" "${oneline_entries:+$header
$oneline_entries}"; then
    written+=("$oneline_file")
  fi

  if ((${#written[@]} > 0)); then
    log "updated deb-src entries in ${written[*]}"
  else
    log "the deb-src entries are up to date."
  fi
  # This runs even when no entry changed, because an earlier update may have failed.
  # It runs only when Kokkos is built, so reruns that reuse the build skip it.
  log "running apt-get update to fetch the source package indexes"
  apt-get -o DPkg::Lock::Timeout=600 update >&2
}

# Download the trilinos source package and extract packages/kokkos into SOURCE_DIR.
# Only packages/kokkos is unpacked, because only Kokkos is built from the large trilinos tree.
fetch_kokkos_source() {
  local download_dir="$1" source_dir="$2"
  begin_step "download the trilinos source package" \
    "Check that 'apt-get source --download-only trilinos' works (it needs deb-src entries and network access to the Debian archive), then rerun this script."

  mkdir -p "$download_dir"
  local start=$EPOCHREALTIME
  log "downloading the trilinos source package into $download_dir"
  (cd "$download_dir" && apt-get source --download-only trilinos) >&2
  log "download took $(seconds_since "$start") s ($(du -sh "$download_dir" | cut -f1))."

  begin_step "extract Kokkos from the trilinos source" \
    "The downloaded trilinos source in $download_dir may be incomplete. Delete $WORK_DIR and rerun this script."
  local -a tarballs=("$download_dir"/trilinos_*.orig.tar.*)
  if [[ ! -f "${tarballs[0]}" ]]; then
    die "no trilinos_*.orig.tar.* file was downloaded into $download_dir. Delete $WORK_DIR and rerun this script."
  fi
  start=$EPOCHREALTIME
  mkdir -p "$source_dir"
  # Debian's patches in trilinos 13.2.0-4 (bookworm) change packages/kokkos only to
  # drop test declarations in TriBITS builds, so the upstream Kokkos tree is built
  # unpatched. NOTE: patches of other Debian revisions are not checked or applied.
  log "extracting packages/kokkos from $(basename "${tarballs[0]}")"
  tar -xf "${tarballs[0]}" -C "$source_dir" --strip-components=1 --wildcards '*/packages/kokkos/*'
  if [[ ! -f "$source_dir/packages/kokkos/CMakeLists.txt" ]]; then
    die "$(basename "${tarballs[0]}") contains no packages/kokkos/CMakeLists.txt. Set PARASCAN_KOKKOS_DIR to an existing Kokkos $KOKKOS_VERSION install instead."
  fi
  log "extraction took $(seconds_since "$start") s."
}

# Print the Kokkos version (for example 3.4.01) declared in a Kokkos source tree.
read_kokkos_source_version() {
  awk '
    /set\(Kokkos_VERSION_MAJOR/ { gsub(/[^0-9]/, "", $2); major = $2 }
    /set\(Kokkos_VERSION_MINOR/ { gsub(/[^0-9]/, "", $2); minor = $2 }
    /set\(Kokkos_VERSION_PATCH/ { gsub(/[^0-9]/, "", $2); patch = $2 }
    END { printf "%s.%s.%02d\n", major, minor, patch }
  ' "$1/CMakeLists.txt"
}

# Configure, build and install Kokkos, then move the install into KOKKOS_PREFIX.
build_kokkos() {
  local source_dir="$1/packages/kokkos" build_dir="$WORK_DIR/build" stage_dir="$WORK_DIR/stage"
  local build_log="$WORK_DIR/build.log"

  local source_version
  source_version="$(read_kokkos_source_version "$source_dir")"
  if [[ "$source_version" != "$KOKKOS_VERSION" ]]; then
    die "the trilinos source package contains Kokkos $source_version, not $KOKKOS_VERSION. Set PARASCAN_KOKKOS_DIR to a Kokkos $KOKKOS_VERSION install instead."
  fi

  begin_step "configure Kokkos" "See $build_log for the CMake output."
  local start=$EPOCHREALTIME
  log "configuring Kokkos $KOKKOS_VERSION (Serial + OpenMP, shared, C++17); CMake output goes to $build_log"
  # CMAKE_INSTALL_RPATH=$ORIGIN lets libkokkoscontainers.so find libkokkoscore.so
  # in the same folder without LD_LIBRARY_PATH.
  # shellcheck disable=SC2016 # $ORIGIN is for the dynamic loader, not the shell.
  if ! cmake -S "$source_dir" -B "$build_dir" \
    -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CXX_STANDARD=17 \
    -DCMAKE_INSTALL_PREFIX="$KOKKOS_PREFIX" \
    -DCMAKE_INSTALL_LIBDIR=lib \
    -DCMAKE_INSTALL_RPATH='$ORIGIN' \
    -DBUILD_SHARED_LIBS=ON \
    -DKokkos_ENABLE_SERIAL=ON \
    -DKokkos_ENABLE_OPENMP=ON \
    -DKokkos_ENABLE_TESTS=OFF \
    -DKokkos_ENABLE_EXAMPLES=OFF \
    >"$build_log" 2>&1; then
    tail -n 30 "$build_log" >&2
    die "the CMake configuration of Kokkos failed. See $build_log."
  fi
  log "configure took $(seconds_since "$start") s."

  begin_step "build Kokkos" "See $build_log for the compiler output."
  start=$EPOCHREALTIME
  log "building Kokkos with $JOBS parallel jobs"
  if ! cmake --build "$build_dir" --parallel "$JOBS" >>"$build_log" 2>&1; then
    tail -n 30 "$build_log" >&2
    die "the Kokkos build failed. See $build_log."
  fi
  log "build took $(seconds_since "$start") s."

  begin_step "install Kokkos" "See $build_log for the install output."
  # DESTDIR puts the files under the stage folder while every path written into
  # them still names KOKKOS_PREFIX, so moving the staged tree into place is a rename.
  rm -rf "$stage_dir"
  if ! DESTDIR="$stage_dir" cmake --install "$build_dir" >>"$build_log" 2>&1; then
    tail -n 30 "$build_log" >&2
    die "installing Kokkos into $stage_dir failed. See $build_log."
  fi
  local staged_prefix="$stage_dir$KOKKOS_PREFIX"
  if [[ ! -f "$staged_prefix/lib/libkokkoscore.so" ]]; then
    die "the Kokkos install contains no lib/libkokkoscore.so. See $build_log."
  fi
  if ! grep -q 'OPENMP' "$staged_prefix/lib/cmake/Kokkos/KokkosConfigCommon.cmake"; then
    die "the installed KokkosConfig has no OpenMP backend. See $build_log."
  fi
  mv "$staged_prefix" "$KOKKOS_PREFIX"
}

# Build Kokkos into KOKKOS_PREFIX unless it is already installed there.
provide_cached_kokkos() {
  begin_step "check the cached Kokkos build" ""
  local config="$KOKKOS_PREFIX/lib/cmake/Kokkos/KokkosConfig.cmake"
  if [[ -f "$config" ]]; then
    log "reusing the Kokkos $KOKKOS_VERSION install in $KOKKOS_PREFIX"
    return
  fi

  # The lock keeps two runs of this script from building into the same folders.
  # A run that waited for the lock then reuses the install that the other run made.
  exec 9>"$CACHE_DIR/setup.lock"
  if ! flock -n 9; then
    log "another run of this script holds $CACHE_DIR/setup.lock, waiting for it"
    flock 9
  fi
  if [[ -f "$config" ]]; then
    log "reusing the Kokkos $KOKKOS_VERSION install in $KOKKOS_PREFIX"
    return
  fi
  if [[ -e "$KOKKOS_PREFIX" ]]; then
    die "$KOKKOS_PREFIX exists but contains no lib/cmake/Kokkos/KokkosConfig.cmake. Delete it and rerun this script."
  fi

  log "building Kokkos $KOKKOS_VERSION from Debian's trilinos source package into $KOKKOS_PREFIX"
  local total_start=$EPOCHREALTIME
  enable_source_packages

  # A previous run that was interrupted may have left a partial download or build.
  rm -rf "$WORK_DIR"
  mkdir -p "$WORK_DIR"
  fetch_kokkos_source "$WORK_DIR/download" "$WORK_DIR/source"
  build_kokkos "$WORK_DIR/source"

  begin_step "remove the Kokkos build files" ""
  rm -rf "$WORK_DIR"
  rmdir "$CACHE_DIR/work" 2>/dev/null || true
  log "installed Kokkos $KOKKOS_VERSION in $KOKKOS_PREFIX ($(seconds_since "$total_start") s in total)."
}

main() {
  install_apt_packages

  begin_step "find a Kokkos install" ""
  mkdir -p "$CACHE_DIR"
  local kokkos_dir
  # die() inside the command substitution has already printed the error.
  kokkos_dir="$(find_user_kokkos)" || {
    error_reported=1
    exit 1
  }
  if [[ -z "$kokkos_dir" ]]; then
    provide_cached_kokkos
    kokkos_dir="$KOKKOS_PREFIX/lib/cmake/Kokkos"
  fi

  begin_step "record Kokkos_DIR" \
    "Make $CACHE_DIR writable for this user, or set PARASCAN_CACHE to a writable folder."
  printf '%s\n' "$kokkos_dir" >"$CACHE_DIR/kokkos_dir.tmp"
  mv "$CACHE_DIR/kokkos_dir.tmp" "$CACHE_DIR/kokkos_dir"
  log "done. Kokkos_DIR is also written to $CACHE_DIR/kokkos_dir"
  printf 'Kokkos_DIR=%q\n' "$kokkos_dir"
}

# Sourcing the script (for testing its functions) defines them without running main.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  main "$@"
fi
