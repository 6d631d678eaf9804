#!/usr/bin/env bash
# fuzz.sh DURATION -- run every fuzz target of the module for DURATION each (e.g. 10s in the test
# command, 2m with `make fuzz`). Seed corpora (f.Add and testdata/fuzz) also run as plain unit
# tests in `go test`. A finding fails the script and leaves the input in testdata/fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."
time=${1:-2m}
status=0
while IFS= read -r line; do
  file=${line%%:*}; name=$(sed -E 's/^.*func (Fuzz[A-Za-z0-9_]*).*/\1/' <<<"$line")
  pkg=./$(dirname "$file")
  echo "== $pkg $name ($time)"
  if ! go test "$pkg" -run '^$' -fuzz "^${name}\$" -fuzztime "$time" -fuzzminimizetime 5s; then
    status=1
  fi
done < <(grep -rn --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(' . | sort)
exit $status
