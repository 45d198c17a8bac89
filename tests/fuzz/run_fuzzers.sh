#!/usr/bin/env bash
# Runs the libFuzzer targets of a -DFLIKPAY_FUZZ=ON build: first every saved regression input of a
# target (once each), then the target for SECONDS on a scratch copy of its seeds, as many targets
# at a time as there are cores. Any crash, sanitizer report, broken property, timeout or memory
# blow-up fails the run and leaves the input that did it under the printed directory.
#   tests/fuzz/run_fuzzers.sh BUILD_DIR SECONDS [TARGET...]   (default: every target)
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 BUILD_DIR SECONDS [TARGET...]" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
seconds=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)

# target|dictionary|options. max_len: libFuzzer would take the longest seed, and an alias or a date
# only misbehaves past the lengths the seeds have (an e-mail may be 254 characters).
targets=(
  "bankart_answers_fuzz||"
  "callback_json_fuzz|json.dict|"
  "callback_xml_fuzz|xml.dict|"
  "signature_fuzz||-max_len=4096"
  "http_date_fuzz|http_date.dict|-max_len=128"
  "alias_fuzz||-max_len=320"
  "money_fuzz||-max_len=64"
)
if [ $# -gt 0 ]; then
  selected=()
  for name in "$@"; do
    found=0
    for entry in "${targets[@]}"; do
      if [ "${entry%%|*}" = "$name" ]; then
        selected+=("$entry")
        found=1
      fi
    done
    if [ "$found" = 0 ]; then
      echo "run_fuzzers: no target $name" >&2
      exit 2
    fi
  done
  targets=("${selected[@]}")
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/flikpay-fuzz.XXXXXX")
run_one() {
  local name=$1 dict=$2 options=$3 binary="$build/tests/fuzz/$1"
  local regressions="$here/regressions/$name" log="$work/$name.log"
  local -a inputs=()
  if [ -d "$regressions" ]; then
    mapfile -t inputs < <(find "$regressions" -type f | sort)
  fi
  if ((${#inputs[@]})); then
    # Given files instead of a directory, libFuzzer runs each once and stops at the first failure.
    if ! "$binary" -rss_limit_mb=1024 -timeout=10 "${inputs[@]}" >"$log" 2>&1; then
      echo "replaying its regression inputs" >"$work/$name.failed"
      return
    fi
    echo "${#inputs[@]} regression inputs pass" >"$work/$name.regressions"
  fi
  mkdir -p "$work/$name.corpus" "$work/$name.artifacts"
  cp "$here/corpus/$name"/* "$work/$name.corpus/"
  local -a flags=(-max_total_time="$seconds" -rss_limit_mb=1024 -timeout=10 -print_final_stats=1
    -artifact_prefix="$work/$name.artifacts/")
  [ -n "$dict" ] && flags+=(-dict="$here/dictionaries/$dict")
  # shellcheck disable=SC2206  # options are words
  [ -n "$options" ] && flags+=($options)
  if ! "$binary" "${flags[@]}" "$work/$name.corpus" >>"$log" 2>&1; then
    echo "fuzzing" >"$work/$name.failed"
  fi
}

running=0
for entry in "${targets[@]}"; do
  IFS='|' read -r name dict options <<<"$entry"
  if [ ! -x "$build/tests/fuzz/$name" ]; then
    echo "run_fuzzers: no $build/tests/fuzz/$name (cmake --build ... --target flikpay_fuzzers)" >&2
    exit 2
  fi
  run_one "$name" "$dict" "$options" &
  running=$((running + 1))
  if ((running >= $(nproc))); then
    wait -n || true
    running=$((running - 1))
  fi
done
wait || true

failed=0
for entry in "${targets[@]}"; do
  name=${entry%%|*}
  log="$work/$name.log"
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" 2>/dev/null | tail -1 || true)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" 2>/dev/null | tail -1 || true)
  seeds=$(find "$here/corpus/$name" -type f | wc -l)
  grown=$( (find "$work/$name.corpus" -type f 2>/dev/null || true) | wc -l)
  regressions=$(cat "$work/$name.regressions" 2>/dev/null || echo "no regression inputs")
  if [ -f "$work/$name.failed" ] || [ -z "$runs" ]; then
    failed=1
    echo "$name: FAILED while $(cat "$work/$name.failed" 2>/dev/null || echo starting)"
    tail -n 60 "$log" 2>/dev/null || true
  else
    echo "$name: ${runs:-?} inputs run in ${seconds} s (${speed:-?} exec/s), corpus $seeds -> $grown; $regressions"
  fi
done
if [ "$failed" = 1 ]; then
  echo "run_fuzzers: failed; logs and failing inputs are in $work (save an input under" \
    "tests/fuzz/regressions/TARGET/ once understood: the run replays it)"
  exit 1
fi
rm -rf "$work"
