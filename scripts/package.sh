#!/usr/bin/env bash
# Builds the Debian packages didban_<version>_<arch>.deb and didban-agent_<version>_<arch>.deb
# with cargo-deb (docs/install.md, "Building the packages").
#
#   scripts/package.sh [OUT_DIR]           build with the `dist` profile (release, stripped)
#   scripts/package.sh --debug [OUT_DIR]   package the debug binaries already built
#                                          (cargo build / the test run); for the package
#                                          test, not for release
#
# OUT_DIR defaults to <target dir>/debian. Installs cargo-deb when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=dist
# xz at its default level takes minutes for a 100 MB debug binary; the test's packages are
# thrown away, so they get the fast setting.
compress=()
if [ "${1:-}" = "--debug" ]; then
    profile=dev
    compress=(--fast)
    shift
fi
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
out="${1:-$target_dir/debian}"
mkdir -p "$out"

# Pinned: the package layout (and `--profile dev`, which cargo-deb warns about) is checked
# against this version by scripts/package_test.sh.
cargo_deb_version=3.8.0
if ! cargo deb --version 2>/dev/null | grep -qx "cargo-deb $cargo_deb_version"; then
    cargo install cargo-deb --version "$cargo_deb_version" --locked
fi

if [ "$profile" = dist ]; then
    cargo build --locked --profile dist -p didban-cli -p didban-agent
fi
# --no-build: the binaries come from the build above (or the test run's debug build);
# cargo-deb reads them from <target dir>/<profile dir>/ and strips them.
for pkg in didban-cli didban-agent; do
    cargo deb --no-build --profile "$profile" "${compress[@]}" -p "$pkg" --output "$out"
done
ls -l "$out"/*.deb
