#!/usr/bin/env bash
# Reads the Dockerfile the way Docker would, so scripts/fresh-check.sh can run on a bare root what
# Docker would run, and tests/dockerfile_test.sh can check the images' shape, without a Docker
# engine and without a second copy of any Dockerfile line.
#   dockerfile-build-stage.sh [DOCKERFILE [STAGE]]
#       STAGE's ENV, WORKDIR and RUN lines (after those of the stages it is built FROM) as one bash
#       script, each RUN line run by /bin/sh -c as Docker does; STAGE defaults to build. The build stage must run scripts/install-deps.sh: the
#       image and CI must install the same packages, or a package missing from the script hides
#       behind the image (and vice versa). A RUN after a non-root USER is refused (the script runs
#       as root).
#   dockerfile-build-stage.sh --describe DOCKERFILE STAGE
#       "BASE <image>" (the image the stage's chain of stages starts from), then every instruction
#       of the chain, one line each (continuation lines joined), first stage first.
#   dockerfile-build-stage.sh --stages DOCKERFILE
#       the stage names, in file order (an unnamed stage is shown by its number).
set -euo pipefail
mode=script
case "${1:-}" in
--describe | --stages)
  mode=${1#--}
  shift
  ;;
esac
dockerfile=${1:-Dockerfile}
[ -f "$dockerfile" ] || { echo "$dockerfile: no such file" >&2; exit 1; }

# "STAGE<TAB>INSTRUCTION" for every instruction; a stage starts with "STAGE<TAB>FROM IMAGE".
all=$(awk '
  /^[[:space:]]*#/ && !continuing { next }
  /^[[:space:]]*$/ && !continuing { next }
  { line = $0; sub(/[[:space:]]*\\$/, "", line) }
  !continuing && toupper($1) == "FROM" {
    n++; stage = n
    for (i = 3; i < NF; i++) if (toupper($i) == "AS") stage = $(i + 1)
    print stage "\tFROM " $2
    next
  }
  {
    command = command (continuing ? " " : "") line
    continuing = ($0 ~ /\\$/)
    if (!continuing) { print stage "\t" command; command = "" }
  }
' "$dockerfile")
stages=$(awk -F'\t' '$2 ~ /^FROM / { print $1 }' <<<"$all")
if [ "$mode" = stages ]; then
  printf '%s\n' "$stages"
  exit 0
fi

stage=${2:-build}
grep -qxF -- "$stage" <<<"$stages" || { echo "$dockerfile: no stage named '$stage'" >&2; exit 1; }
# The chain: STAGE, the stage it is FROM, and so on, down to an image that is no stage.
chain=()
current=$stage
while :; do
  chain=("$current" "${chain[@]}")
  from=$(awk -F'\t' -v s="$current" '$1 == s && $2 ~ /^FROM / { print substr($2, 6) }' <<<"$all")
  if grep -qxF -- "$from" <<<"$stages" && [[ " ${chain[*]} " != *" $from "* ]]; then
    current=$from
  else
    break
  fi
done
instructions="BASE $from"
for name in "${chain[@]}"; do
  instructions+=$'\n'$(awk -F'\t' -v s="$name" '$1 == s && $2 !~ /^FROM / { print $2 }' <<<"$all")
done
if [ "$mode" = describe ]; then
  printf '%s\n' "$instructions"
  exit 0
fi

script="set -euo pipefail"
user=root
while IFS= read -r instruction; do
  case "$instruction" in
  "USER "*) user=${instruction#USER } ;;
  "ENV "*) script+=$'\n'"export ${instruction#ENV }" ;;
  "WORKDIR "*) script+=$'\n'"mkdir -p ${instruction#WORKDIR } && cd ${instruction#WORKDIR }" ;;
  "RUN "*)
    case "$user" in
    root | 0 | root:root | 0:0) ;;
    *) echo "$dockerfile: stage $stage runs a RUN line as user $user; not supported" >&2; exit 1 ;;
    esac
    # Each RUN line on its own /bin/sh, as Docker runs it: its status is the line's status
    # (inside one bash script, a failure before the last && of a line would not stop set -e).
    body=${instruction#RUN }
    script+=$'\n'"/bin/sh -c '${body//\'/\'\\\'\'}'"
    ;;
  esac
done <<<"$instructions"
grep -q '^RUN ' <<<"$instructions" || { echo "$dockerfile: stage $stage has no RUN lines" >&2; exit 1; }
if [ "$stage" = build ]; then
  grep -Eq "(^|[[:space:]&;'])bash scripts/install-deps.sh([[:space:]&;']|\$)" <<<"$script" ||
    { echo "$dockerfile: the build stage does not run 'bash scripts/install-deps.sh'" >&2; exit 1; }
fi
printf '%s\n' "$script"
