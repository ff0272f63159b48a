#!/usr/bin/env bash
# Runs the libFuzzer targets of fuzz/ (cargo-fuzz, nightly toolchain) and prints the
# executions per target.
#
#   scripts/fuzz.sh [target|all|list] [seconds per target]     (defaults: all, 60)
#
# Needs `cargo install cargo-fuzz --locked` and `rustup toolchain install nightly`.
# The build goes to $CARGO_TARGET_DIR/fuzz (fuzz/target without CARGO_TARGET_DIR); the inputs
# the fuzzer finds go to a working corpus beside it (not into the repository), seeded from
# fuzz/corpus/<target>/ and fuzz/regressions/<target>/. A crash stops that target, leaves the
# input in fuzz/artifacts/<target>/ and makes the script exit 1 after the other targets ran.
# To keep a crash as a regression: minimise it (`cargo +nightly fuzz tmin <target> <file>`),
# fix the decoder, and move the input to fuzz/regressions/<target>/ — the stable test
# `collector/tests/it/fuzz_regressions.rs` replays it in CI from then on.
#
# Environment: FUZZ_SANITIZER (none | address, default none: our crates forbid unsafe code, and
# without ASan a run executes about twice the inputs), FUZZ_RSS_MB (per-input memory limit,
# default 2048), FUZZ_TIMEOUT (seconds one input may take, default 10).
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
what=${1:-all}
seconds=${2:-60}
sanitizer=${FUZZ_SANITIZER:-none}
rss_mb=${FUZZ_RSS_MB:-2048}
timeout=${FUZZ_TIMEOUT:-10}
target_dir=${CARGO_TARGET_DIR:-$root/fuzz/target}
target_dir=${target_dir%/}/fuzz
work=$target_dir/work

mapfile -t all_targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^didban-fuzz$')

if [[ $what == list ]]; then
    printf '%s\n' "${all_targets[@]}"
    exit 0
fi
if [[ $what == all ]]; then
    targets=("${all_targets[@]}")
else
    found=0
    for t in "${all_targets[@]}"; do [[ $t == "$what" ]] && found=1; done
    if [[ $found == 0 ]]; then
        echo "unknown fuzz target '$what'; known: ${all_targets[*]}" >&2
        exit 2
    fi
    targets=("$what")
fi
if ! [[ $seconds =~ ^[0-9]+$ ]] || [[ $seconds == 0 ]]; then
    echo "seconds must be a positive whole number, not '$seconds'" >&2
    exit 2
fi

build_flags=(-O -a -s "$sanitizer" --codegen-units 16 --target-dir "$target_dir")
build_only=()
[[ $what != all ]] && build_only=("$what")
(cd fuzz && cargo +nightly fuzz build "${build_flags[@]}" "${build_only[@]}") >&2

summary=()
crashed=0
for t in "${targets[@]}"; do
    mkdir -p "$work/corpus/$t" "fuzz/artifacts/$t"
    seeds=("$root/fuzz/corpus/$t")
    [[ -d $root/fuzz/regressions/$t ]] && seeds+=("$root/fuzz/regressions/$t")
    log=$work/$t.log
    echo "== $t: ${seconds}s (log: $log)" >&2
    status=ok
    if ! (cd fuzz && cargo +nightly fuzz run "${build_flags[@]}" "$t" "$work/corpus/$t" "${seeds[@]}" -- \
        -max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb="$rss_mb" -timeout="$timeout" \
        -artifact_prefix="$root/fuzz/artifacts/$t/") >"$log" 2>&1; then
        status=CRASH
        crashed=1
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    if [[ $status == CRASH ]]; then
        grep -E 'panicked at|ERROR: libFuzzer|deadly signal|stack overflow|Test unit written' "$log" | head -5 >&2 || true
    fi
    summary+=("$(printf '%-24s %8s s %12s execs %8s/s cov %6s  %s' "$t" "$seconds" "${execs:-?}" "${rate:-?}" "${cov:-?}" "$status")")
done

echo
echo "target                    seconds          executions   per second  coverage  result"
printf '%s\n' "${summary[@]}"
exit "$crashed"
