#!/usr/bin/env bash
# Prints the Dockerfile's build stage (the `FROM ... AS build` stage's ENV, WORKDIR and RUN lines)
# as one bash script, so scripts/fresh-check.sh can run on a bare root exactly what Docker would.
# Fails when that stage does not run scripts/install-deps.sh: the image and CI must install the
# same packages, or a package missing from the script hides behind the image (and vice versa).
set -euo pipefail
dockerfile=${1:-Dockerfile}
stage=$(awk '
  /^FROM / { in_build = ($0 ~ / AS build$/); next }
  !in_build { next }
  { line = $0; sub(/[[:space:]]*\\$/, "", line) }
  /^(RUN|ENV|WORKDIR) / || continuing {
    command = command (continuing ? " " : "") line
    continuing = ($0 ~ /\\$/)
    if (!continuing) { print command; command = "" }
  }
' "$dockerfile")
[ -n "$stage" ] || { echo "$dockerfile: no 'FROM ... AS build' stage with RUN lines" >&2; exit 1; }
script="set -euo pipefail"
while IFS= read -r instruction; do
  case "$instruction" in
  "ENV "*) script+=$'\n'"export ${instruction#ENV }" ;;
  "WORKDIR "*) script+=$'\n'"mkdir -p ${instruction#WORKDIR } && cd ${instruction#WORKDIR }" ;;
  "RUN "*) script+=$'\n'"${instruction#RUN }" ;;
  esac
done <<<"$stage"
grep -Eq '(^|[[:space:]&;])bash scripts/install-deps.sh([[:space:]&;]|$)' <<<"$script" ||
  { echo "$dockerfile: the build stage does not run 'bash scripts/install-deps.sh'" >&2; exit 1; }
printf '%s\n' "$script"
