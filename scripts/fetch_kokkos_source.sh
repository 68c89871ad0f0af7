#!/usr/bin/env bash
# Puts the Kokkos 3.4.01 source tree (packages/kokkos of Debian's trilinos source
# package) into a folder of the repository, by default third_party/kokkos-3.4.01,
# which git ignores. scripts/gpu_check.sh builds Kokkos from there on a machine
# without network access, so run this first on a machine that has it, and carry
# the folder along (about 12 MiB).
#
# Usage: scripts/fetch_kokkos_source.sh [DEST]
#
# With PARASCAN_KOKKOS_SOURCE set (a Kokkos tree, or a trilinos tree containing
# packages/kokkos) the tree is copied from there instead of downloaded. A DEST
# that already contains a Kokkos tree is left as it is.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-$root/third_party/kokkos-3.4.01}"

# setup.sh defines its functions without running when sourced.
# shellcheck source=setup.sh
source "$root/scripts/setup.sh"

if [[ -f "$dest/CMakeLists.txt" && -d "$dest/core/src" ]]; then
  log "$dest already contains a Kokkos source tree; delete it to fetch again."
  exit 0
fi
[[ ! -e "$dest" ]] || die "$dest exists but contains no Kokkos source tree. Delete it and rerun this script."

WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/parascan-kokkos-source.XXXXXX")"
trap 'rm -rf "$WORK_DIR"' EXIT
if [[ -n "${PARASCAN_KOKKOS_SOURCE:-}" ]]; then
  KOKKOS_SOURCE="$PARASCAN_KOKKOS_SOURCE"
  copy_kokkos_source "$WORK_DIR/source"
else
  enable_source_packages
  fetch_kokkos_source "$WORK_DIR/download" "$WORK_DIR/source"
fi

version="$(read_kokkos_source_version "$WORK_DIR/source/packages/kokkos")"
[[ "$version" == "$KOKKOS_VERSION" ]] || die "the source contains Kokkos $version, not $KOKKOS_VERSION."
mkdir -p "$(dirname "$dest")"
mv "$WORK_DIR/source/packages/kokkos" "$dest"
log "Kokkos $version source in $dest ($(du -sh "$dest" | cut -f1))"
