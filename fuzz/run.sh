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
# cargo-fuzz's fuzz/target). One fuzzing process at a time keeps the run bounded on a small
# machine. INCEPT_FUZZ_KNOWN_BUGS=1 stops api_bad_input from skipping the inputs that hit the
# bugs already reported in tests/fuzz_regressions.rs.
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
failed=()
summary=()
for t in "${targets[@]}"; do
  mkdir -p "$scratch/$t" "artifacts/$t"
  if [ -d "corpus/$t" ]; then cp -r "corpus/$t/." "$scratch/$t/"; fi
  log="$scratch/$t.log"
  start=$(date +%s)
  status=0
  cargo +nightly fuzz run -a "${target_dir[@]}" "$t" "$scratch/$t" -- \
    -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 -max_len=4096 \
    -print_final_stats=1 -artifact_prefix="artifacts/$t/" >"$log" 2>&1 || status=$?
  elapsed=$(( $(date +%s) - start ))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  if [ -z "$execs" ]; then
    execs=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#')
  fi
  corpus=$(find "$scratch/$t" -type f | wc -l)
  line="$t: ${execs:-0} executions in ${elapsed} s, corpus ${corpus} inputs"
  if [ "$status" -ne 0 ]; then
    line="$line, FAILED (exit $status)"
    failed+=("$t")
    echo "== $t failed; the end of its log:"
    tail -n 60 "$log"
  fi
  echo "$line"
  summary+=("$line")
done

echo
echo "== fuzz summary (${seconds} s per target)"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -ne 0 ]; then
  echo "crashing targets: ${failed[*]} (inputs in fuzz/artifacts/)"
  exit 1
fi
