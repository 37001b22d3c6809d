#!/usr/bin/env bash
# Runs every fuzz target for a bounded time and prints how many inputs each executed.
#
#   fuzz/run.sh                      # every target, FUZZ_SECONDS (default 60) each
#   FUZZ_SECONDS=20 fuzz/run.sh conv_differential api_bad_input
#
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`). Targets are
# built with debug assertions and overflow checks (`-a`): an arithmetic overflow is a panic, as
# in `cargo test`. Each target starts from its committed seeds in fuzz/corpus/<target>/ and
# fuzzes into a scratch copy, so the committed seeds do not grow. A crash leaves its input in
# fuzz/artifacts/<target>/ and makes the script exit non-zero after the other targets have run.
#
# Environment: FUZZ_SECONDS (per target), FUZZ_TARGET_DIR (cargo target directory; default
# cargo-fuzz's fuzz/target), FUZZ_JOBS (targets fuzzed at once, default 1; each fuzzer uses one
# core, so CI on two cores runs two). INCEPT_FUZZ_KNOWN_BUGS=1 stops api_bad_input from skipping
# the inputs that hit the bugs already reported in tests/fuzz_regressions.rs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

seconds="${FUZZ_SECONDS:-60}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(conv_differential pool_differential module_differential api_bad_input)
fi
target_dir=()
if [ -n "${FUZZ_TARGET_DIR:-}" ]; then
  target_dir=(--target-dir "$FUZZ_TARGET_DIR")
fi

echo "== building the fuzz targets"
cargo +nightly fuzz build -a "${target_dir[@]}"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
# Fuzzes target $1 into the scratch copy of its seeds; leaves its summary line in
# $scratch/$1.line and, if it crashed, the end of its log in $scratch/$1.failed.
fuzz_one() {
  local t=$1 log="$scratch/$1.log" start status=0 elapsed execs corpus line
  mkdir -p "$scratch/$t" "artifacts/$t"
  if [ -d "corpus/$t" ]; then cp -r "corpus/$t/." "$scratch/$t/"; fi
  start=$(date +%s)
  cargo +nightly fuzz run -a "${target_dir[@]}" "$t" "$scratch/$t" -- \
    -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 -max_len=4096 \
    -print_final_stats=1 -artifact_prefix="artifacts/$t/" >"$log" 2>&1 || status=$?
  elapsed=$(( $(date +%s) - start ))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  if [ -z "$execs" ]; then
    execs=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#' || true)
  fi
  corpus=$(find "$scratch/$t" -type f | wc -l)
  line="$t: ${execs:-0} executions in ${elapsed} s, corpus ${corpus} inputs"
  if [ "$status" -ne 0 ]; then
    line="$line, FAILED (exit $status)"
    tail -n 60 "$log" >"$scratch/$t.failed"
  fi
  echo "$line" >"$scratch/$t.line"
}

# FUZZ_JOBS targets at a time (default 1: each fuzzer is single-threaded).
jobs="${FUZZ_JOBS:-1}"
running=0
for t in "${targets[@]}"; do
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
  fuzz_one "$t" &
  running=$((running + 1))
done
wait

failed=()
summary=()
for t in "${targets[@]}"; do
  if [ -f "$scratch/$t.failed" ]; then
    echo "== $t failed; the end of its log:"
    cat "$scratch/$t.failed"
    failed+=("$t")
  elif [ ! -f "$scratch/$t.line" ]; then
    failed+=("$t")
  fi
  summary+=("$(cat "$scratch/$t.line" 2>/dev/null || echo "$t: FAILED (no result)")")
done

echo
echo "== fuzz summary (${seconds} s per target)"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -ne 0 ]; then
  echo "crashing targets: ${failed[*]} (inputs in fuzz/artifacts/)"
  exit 1
fi
