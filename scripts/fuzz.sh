#!/usr/bin/env bash
# fuzz.sh DURATION -- run every fuzz target of the module for DURATION each (e.g. 10s in the test
# command, 2m with `make fuzz`). Seed corpora (f.Add and testdata/fuzz) also run as plain unit
# tests in `go test`. A finding fails the script and leaves the input in testdata/fuzz/.
#
# go1.26's fuzzing coordinator can fail a target with a bare "context deadline exceeded" when
# -fuzztime expires while a worker is mid-input (golang/go#75804, fixed in go1.27), writing no
# input. Such a run, and only such a run, is repeated once, loudly; a second failure of any kind
# fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
time=${1:-2m}
status=0
run_target() { # pkg name -> 0 pass, 1 finding or other failure, 2 the coordinator race
  local pkg=$1 name=$2 log corpus before after rc=0
  corpus="$pkg/testdata/fuzz/$name"
  before=$(ls "$corpus" 2>/dev/null | wc -l)
  log=$(mktemp)
  go test "$pkg" -run '^$' -fuzz "^${name}\$" -fuzztime "$time" -fuzzminimizetime 5s 2>&1 | tee "$log" || rc=$?
  after=$(ls "$corpus" 2>/dev/null | wc -l)
  if [ "$rc" -ne 0 ] && [ "$after" -eq "$before" ] && grep -q -- "--- FAIL: $name " "$log" &&
    [ "$(grep -A1 -- "--- FAIL: $name " "$log" | tail -1 | tr -d '[:space:]')" = "contextdeadlineexceeded" ]; then
    rc=2
  fi
  rm -f "$log"
  return $rc
}
while IFS= read -r line; do
  file=${line%%:*}; name=$(sed -E 's/^.*func (Fuzz[A-Za-z0-9_]*).*/\1/' <<<"$line")
  pkg=./$(dirname "$file")
  echo "== $pkg $name ($time)"
  rc=0; run_target "$pkg" "$name" || rc=$?
  if [ "$rc" -eq 2 ]; then
    echo "!! $pkg $name: 'context deadline exceeded' with no input written (golang/go#75804); running it once more"
    rc=0; run_target "$pkg" "$name" || rc=$?
  fi
  if [ "$rc" -ne 0 ]; then
    status=1
  fi
done < <(grep -rn --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(' . | sort)
exit $status
