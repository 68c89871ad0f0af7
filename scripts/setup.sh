#!/usr/bin/env bash
# Install the Debian packages that parascan builds against and provide Kokkos 3.4.01
# (Serial and OpenMP backends, shared libraries, C++17; with --cuda also Cuda).
#
# Usage: scripts/setup.sh [--cuda [ARCH]] [--kokkos-source DIR] [--no-apt]
#        eval "$(scripts/setup.sh)"  (sets Kokkos_DIR in the calling shell)
#
#   --cuda [ARCH]        also build the Cuda backend for the GPU architecture ARCH, a
#                        Kokkos name: TURING75, AMPERE80, AMPERE86 or HOPPER90 (an H100
#                        or H200, the default). Same as PARASCAN_CUDA_ARCH=ARCH.
#   --kokkos-source DIR  build Kokkos from DIR (a Kokkos source tree, or a trilinos
#                        tree containing packages/kokkos) instead of downloading
#                        Debian's trilinos source. Same as PARASCAN_KOKKOS_SOURCE=DIR.
#   --no-apt             skip the Debian package step (for machines without network
#                        access where the packages are already installed).
#
# Kokkos comes from the first of these that exists:
#   1. PARASCAN_KOKKOS_DIR: a folder containing KokkosConfig.cmake, or an install prefix.
#   2. An install that find_package(Kokkos) finds through the Kokkos_DIR or
#      CMAKE_PREFIX_PATH environment variables.
#   3. The cached build in $PARASCAN_CACHE/kokkos-3.4.01-serial-openmp, or with --cuda
#      in $PARASCAN_CACHE/kokkos-3.4.01-serial-openmp-cuda-<arch>.
#   4. A new build of packages/kokkos from Debian's trilinos source package, which this
#      script downloads with apt-get source and installs into that cache folder. With
#      --cuda, scripts/kokkos/kokkos-3.4.01-cuda.patch is applied first (CUDA 13 and
#      Hopper support), and the build uses Kokkos' nvcc_wrapper with its default
#      architecture set to ARCH's.
# With --cuda, an install from 1 or 2 must have the Cuda backend.
#
# Environment:
#   PARASCAN_CACHE         cache folder (default: $HOME/.cache/parascan)
#   PARASCAN_KOKKOS_DIR    Kokkos install to use instead of building one
#   PARASCAN_CUDA_ARCH     as --cuda
#   PARASCAN_KOKKOS_SOURCE as --kokkos-source
#   PARASCAN_JOBS          parallel compile jobs for the Kokkos build (default: nproc)
#   CUDA_ROOT              CUDA toolkit whose bin/nvcc is used (default: nvcc on PATH,
#                          then /usr/local/cuda)
#
# Progress messages go to stderr with a "setup:" prefix. The last line on stdout is
# "Kokkos_DIR=<folder containing KokkosConfig.cmake>", and the same folder is written to
# $PARASCAN_CACHE/kokkos_dir (with --cuda: $PARASCAN_CACHE/kokkos_dir-cuda-<arch>, so
# the host-only record stays as it is). For a Kokkos 3.4 Cuda build that this script
# made, the line before it is "CMAKE_CXX_COMPILER=<the installed nvcc_wrapper>", the
# compiler parascan must be built with.
set -euo pipefail

readonly KOKKOS_VERSION=3.4.01
readonly APT_PACKAGES=(
  build-essential cmake git pkg-config dpkg-dev
  libhdf5-dev nlohmann-json3-dev catch2 libbenchmark-dev libcli11-dev
  libspdlog-dev libfmt-dev libopenblas-dev libopenblas-openmp-dev
  python3-numpy python3-h5py python3-matplotlib python3-pytest python3-torch
  python3-jsonschema
)

# GPU architectures (Kokkos' names) that CUDA 13 still compiles for; HOPPER90 is added
# to Kokkos 3.4.01 by scripts/kokkos/kokkos-3.4.01-cuda.patch.
readonly CUDA_ARCHES=(TURING75 AMPERE80 AMPERE86 HOPPER90)
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly CUDA_PATCH="$SCRIPT_DIR/kokkos/kokkos-$KOKKOS_VERSION-cuda.patch"

CACHE_DIR="${PARASCAN_CACHE:-$HOME/.cache/parascan}"
CUDA_ARCH="${PARASCAN_CUDA_ARCH:-}"
KOKKOS_SOURCE="${PARASCAN_KOKKOS_SOURCE:-}"
SKIP_APT=0
JOBS="${PARASCAN_JOBS:-$(nproc)}"
# Set by configure_paths once the options are known.
KOKKOS_PREFIX=""
WORK_DIR=""
KOKKOS_DIR_RECORD=""
NVCC=""

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

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

parse_options() {
  while (($# > 0)); do
    case "$1" in
      --cuda)
        # Without an architecture, --cuda builds for HOPPER90 (H100, H200).
        if (($# >= 2)) && [[ "$2" != -* ]]; then
          CUDA_ARCH="$2"
          shift 2
        else
          CUDA_ARCH=HOPPER90
          shift
        fi
        ;;
      --cuda=*) CUDA_ARCH="${1#--cuda=}"; shift ;;
      --kokkos-source)
        (($# >= 2)) || die "--kokkos-source needs a folder."
        KOKKOS_SOURCE="$2"
        shift 2
        ;;
      --kokkos-source=*) KOKKOS_SOURCE="${1#--kokkos-source=}"; shift ;;
      --no-apt) SKIP_APT=1; shift ;;
      -h | --help) usage; exit 0 ;;
      *) die "unknown option '$1'. Run $0 --help for the options." ;;
    esac
  done
}

# Set the cache folders for the chosen backends. A Cuda build gets a prefix of its
# own, so the Serial + OpenMP build and its kokkos_dir record stay untouched.
configure_paths() {
  if [[ -z "$CUDA_ARCH" ]]; then
    KOKKOS_PREFIX="$CACHE_DIR/kokkos-$KOKKOS_VERSION-serial-openmp"
    # Scratch space for the Kokkos build. It is on the same file system as
    # KOKKOS_PREFIX, so the finished install can be moved into place with one rename.
    WORK_DIR="$CACHE_DIR/work/kokkos-$KOKKOS_VERSION"
    KOKKOS_DIR_RECORD="$CACHE_DIR/kokkos_dir"
    return
  fi
  local arch
  for arch in "${CUDA_ARCHES[@]}"; do
    if [[ "$CUDA_ARCH" == "$arch" ]]; then
      local suffix="cuda-${CUDA_ARCH,,}"
      KOKKOS_PREFIX="$CACHE_DIR/kokkos-$KOKKOS_VERSION-serial-openmp-$suffix"
      WORK_DIR="$CACHE_DIR/work/kokkos-$KOKKOS_VERSION-$suffix"
      KOKKOS_DIR_RECORD="$CACHE_DIR/kokkos_dir-$suffix"
      return
    fi
  done
  die "invalid CUDA architecture '$CUDA_ARCH'; allowed: ${CUDA_ARCHES[*]} (CUDA 13 compiles for compute capability 7.5 and later)."
}

# Print the sm_XY flag value of a Kokkos GPU architecture name (HOPPER90 -> sm_90).
cuda_sm_of() {
  printf 'sm_%s\n' "${1//[!0-9]/}"
}

# Find nvcc in CUDA_ROOT, on PATH, or in /usr/local/cuda, and set NVCC.
find_nvcc() {
  begin_step "find the CUDA compiler" ""
  local candidate
  if [[ -n "${CUDA_ROOT:-}" ]]; then
    candidate="$CUDA_ROOT/bin/nvcc"
    [[ -x "$candidate" ]] || die "CUDA_ROOT=$CUDA_ROOT contains no bin/nvcc. Point CUDA_ROOT to the CUDA toolkit, or unset it."
  else
    candidate="$(command -v nvcc || true)"
    [[ -n "$candidate" ]] || candidate=/usr/local/cuda/bin/nvcc
    [[ -x "$candidate" ]] || die "--cuda needs the CUDA compiler nvcc, which is neither on PATH nor in /usr/local/cuda/bin. Install the CUDA toolkit, or set CUDA_ROOT to its folder."
  fi
  NVCC="$(readlink -f "$candidate")"
  log "using $NVCC ($("$NVCC" --version | sed -n 's/^Cuda compilation tools, //p'))"
}

# ---------------------------------------------------------------------------
# Step 1: Debian packages
# ---------------------------------------------------------------------------

install_apt_packages() {
  begin_step "install Debian packages" \
    "Check the apt-get output above, then fix the apt sources or network access and rerun this script."

  if ((SKIP_APT)); then
    log "--no-apt: the Debian package step is skipped."
    return
  fi

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

# With --cuda, stop unless the Kokkos install in CONFIG_DIR has the Cuda backend.
# Kokkos 3.4 and later list their backends in KokkosConfigCommon.cmake.
require_cuda_backend() {
  local config_dir="$1"
  [[ -n "$CUDA_ARCH" ]] || return 0
  if ! grep -Eiq '^set\(Kokkos_DEVICES[^)]*CUDA' "$config_dir/KokkosConfigCommon.cmake" 2>/dev/null; then
    die "--cuda was given, but the Kokkos install in $config_dir has no Cuda backend. Point PARASCAN_KOKKOS_DIR or Kokkos_DIR to a Kokkos built with Kokkos_ENABLE_CUDA, or unset them to build Kokkos $KOKKOS_VERSION with Cuda."
  fi
  log "that Kokkos install has the Cuda backend; its GPU architecture is the one it was built for, not checked against $CUDA_ARCH."
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
    require_cuda_backend "$config_dir"
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
  else
    require_cuda_backend "$config_dir"
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

# Copy a Kokkos source tree that is already on this machine (KOKKOS_SOURCE: a Kokkos
# tree, or a trilinos tree containing packages/kokkos) into SOURCE_DIR/packages/kokkos.
# The copy is what gets patched, so the given tree stays unchanged.
copy_kokkos_source() {
  local source_dir="$1" from="$KOKKOS_SOURCE"
  begin_step "copy the Kokkos source" ""
  if [[ -f "$from/packages/kokkos/CMakeLists.txt" ]]; then
    from="$from/packages/kokkos"
  fi
  if [[ ! -f "$from/CMakeLists.txt" || ! -d "$from/core/src" ]]; then
    die "the Kokkos source '$KOKKOS_SOURCE' contains neither a Kokkos tree (CMakeLists.txt and core/src) nor packages/kokkos. Point --kokkos-source or PARASCAN_KOKKOS_SOURCE to packages/kokkos of Debian's trilinos source, or leave it unset to download that source."
  fi
  log "copying the Kokkos source from $from"
  mkdir -p "$source_dir/packages"
  cp -R "$from" "$source_dir/packages/kokkos"
}

# Apply the CUDA patch to the Kokkos tree KOKKOS_TREE, and set the default GPU
# architecture and the nvcc of its nvcc_wrapper. Kokkos' own compiler checks run
# nvcc_wrapper without an -arch flag, and CUDA 13 rejects the wrapper's default sm_35.
prepare_cuda_source() {
  local kokkos_tree="$1"
  begin_step "patch Kokkos for CUDA" "See the patch output above; $CUDA_PATCH must apply to Kokkos $KOKKOS_VERSION."
  command -v patch >/dev/null || die "the 'patch' program is missing (Debian package patch). Install it and rerun this script."
  log "applying $(basename "$CUDA_PATCH")"
  patch -p1 --forward --batch --quiet -d "$kokkos_tree" <"$CUDA_PATCH" >&2

  local wrapper="$kokkos_tree/bin/nvcc_wrapper" sm
  sm="$(cuda_sm_of "$CUDA_ARCH")"
  sed -i -e "s|^default_arch=\"sm_35\"\$|default_arch=\"$sm\"|" \
    -e "s|^nvcc_compiler=nvcc\$|nvcc_compiler=\"$NVCC\"|" "$wrapper"
  if ! grep -q "^default_arch=\"$sm\"\$" "$wrapper" || ! grep -q "^nvcc_compiler=\"$NVCC\"\$" "$wrapper"; then
    die "could not set the default architecture and nvcc in $wrapper; its lines 'default_arch=\"sm_35\"' and 'nvcc_compiler=nvcc' were not found."
  fi
  log "nvcc_wrapper now defaults to -arch=$sm and $NVCC"
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

  local backends="Serial + OpenMP"
  local -a cuda_options=()
  if [[ -n "$CUDA_ARCH" ]]; then
    prepare_cuda_source "$source_dir"
    backends="Serial + OpenMP + Cuda for $CUDA_ARCH"
    # Kokkos 3.4 compiles everything that includes it with nvcc_wrapper, and
    # CUDA_LAMBDA enables the __host__ __device__ lambdas of KOKKOS_LAMBDA.
    cuda_options=(
      -DCMAKE_CXX_COMPILER="$source_dir/bin/nvcc_wrapper"
      -DKokkos_ENABLE_CUDA=ON
      -DKokkos_ENABLE_CUDA_LAMBDA=ON
      -DKokkos_ARCH_"$CUDA_ARCH"=ON
    )
  fi

  begin_step "configure Kokkos" "See $build_log for the CMake output."
  local start=$EPOCHREALTIME
  log "configuring Kokkos $KOKKOS_VERSION ($backends, shared, C++17); CMake output goes to $build_log"
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
    "${cuda_options[@]}" \
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
  local common_config="$staged_prefix/lib/cmake/Kokkos/KokkosConfigCommon.cmake"
  if ! grep -q 'OPENMP' "$common_config"; then
    die "the installed KokkosConfig has no OpenMP backend. See $build_log."
  fi
  if [[ -n "$CUDA_ARCH" ]]; then
    if ! grep -q 'CUDA' "$common_config" || [[ ! -x "$staged_prefix/bin/nvcc_wrapper" ]]; then
      die "the Kokkos install has no Cuda backend or no bin/nvcc_wrapper. See $build_log."
    fi
    # The config names the compiler Kokkos was built with, the nvcc_wrapper of the
    # build folder that is deleted below: point it to the installed copy instead.
    sed -i "s|^SET(Kokkos_CXX_COMPILER \".*\")\$|SET(Kokkos_CXX_COMPILER \"$KOKKOS_PREFIX/bin/nvcc_wrapper\")|" "$common_config"
    grep -q "^SET(Kokkos_CXX_COMPILER \"$KOKKOS_PREFIX/bin/nvcc_wrapper\")\$" "$common_config" ||
      die "could not point Kokkos_CXX_COMPILER in $common_config to the installed nvcc_wrapper."
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
  # Each prefix has its own lock, so a long Cuda build does not block a host build.
  local lock="$CACHE_DIR/setup.lock"
  [[ -z "$CUDA_ARCH" ]] || lock="$KOKKOS_PREFIX.lock"
  exec 9>"$lock"
  if ! flock -n 9; then
    log "another run of this script holds $lock, waiting for it"
    flock 9
  fi
  if [[ -f "$config" ]]; then
    log "reusing the Kokkos $KOKKOS_VERSION install in $KOKKOS_PREFIX"
    return
  fi
  if [[ -e "$KOKKOS_PREFIX" ]]; then
    die "$KOKKOS_PREFIX exists but contains no lib/cmake/Kokkos/KokkosConfig.cmake. Delete it and rerun this script."
  fi

  local total_start=$EPOCHREALTIME
  [[ -z "$CUDA_ARCH" ]] || find_nvcc
  # A previous run that was interrupted may have left a partial download or build.
  rm -rf "$WORK_DIR"
  mkdir -p "$WORK_DIR"
  if [[ -n "$KOKKOS_SOURCE" ]]; then
    log "building Kokkos $KOKKOS_VERSION from $KOKKOS_SOURCE into $KOKKOS_PREFIX"
    copy_kokkos_source "$WORK_DIR/source"
  else
    log "building Kokkos $KOKKOS_VERSION from Debian's trilinos source package into $KOKKOS_PREFIX"
    enable_source_packages
    fetch_kokkos_source "$WORK_DIR/download" "$WORK_DIR/source"
  fi
  build_kokkos "$WORK_DIR/source"

  begin_step "remove the Kokkos build files" ""
  rm -rf "$WORK_DIR"
  rmdir "$CACHE_DIR/work" 2>/dev/null || true
  log "installed Kokkos $KOKKOS_VERSION in $KOKKOS_PREFIX ($(seconds_since "$total_start") s in total)."
}

main() {
  parse_options "$@"
  configure_paths
  install_apt_packages

  begin_step "find a Kokkos install" ""
  mkdir -p "$CACHE_DIR"
  local kokkos_dir
  # die() inside the command substitution has already printed the error.
  kokkos_dir="$(find_user_kokkos)" || {
    error_reported=1
    exit 1
  }
  local compiler=""
  if [[ -z "$kokkos_dir" ]]; then
    provide_cached_kokkos
    kokkos_dir="$KOKKOS_PREFIX/lib/cmake/Kokkos"
    [[ -z "$CUDA_ARCH" ]] || compiler="$KOKKOS_PREFIX/bin/nvcc_wrapper"
  fi

  begin_step "record Kokkos_DIR" \
    "Make $CACHE_DIR writable for this user, or set PARASCAN_CACHE to a writable folder."
  printf '%s\n' "$kokkos_dir" >"$KOKKOS_DIR_RECORD.tmp"
  mv "$KOKKOS_DIR_RECORD.tmp" "$KOKKOS_DIR_RECORD"
  log "done. Kokkos_DIR is also written to $KOKKOS_DIR_RECORD"
  if [[ -n "$compiler" ]]; then
    printf 'CMAKE_CXX_COMPILER=%q\n' "$compiler"
  fi
  printf 'Kokkos_DIR=%q\n' "$kokkos_dir"
}

# Sourcing the script (for testing its functions) defines them without running main.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  main "$@"
fi
