#!/usr/bin/env bash
# Builds Ory Hydra and Ory Oathkeeper from source checkouts, for
# bench/peers/run.sh. Nothing of theirs enters this repository: give the
# paths of git clones (at the commits to measure) outside it, and a
# directory for the binaries.
#
#   bench/peers/build.sh --hydra SRC --oathkeeper SRC --out DIR [--replace MODULE=PATH]...
#
# Writes DIR/hydra and DIR/oathkeeper (CGO_ENABLED=0 go build, as their
# Dockerfiles do; Hydra's SQLite driver is pure Go) and DIR/hydra.commit,
# DIR/oathkeeper.commit (git rev-parse HEAD of each checkout), which
# run.sh records next to the figures.
#
# --replace MODULE=PATH builds with a replace directive for a dependency
# whose version the module proxy cannot serve (for example a pseudo-version
# of github.com/ory/pop/v6 that proxy.golang.org answers 403 for): PATH is
# a checkout of MODULE at the commit the go.mod names. The checkouts' own
# go.mod files are left alone: the replacement goes into a copy, used with
# go build -modfile.
#
# Building Hydra takes several minutes on 2 cores.
set -euo pipefail

hydra="" oathkeeper="" out="" replaces=()
while [ $# -gt 0 ]; do
  case "$1" in
    --hydra) hydra="$2"; shift 2 ;;
    --oathkeeper) oathkeeper="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --replace) replaces+=("$2"); shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "build.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
if [ -z "$hydra" ] || [ -z "$oathkeeper" ] || [ -z "$out" ]; then
  echo "build.sh: --hydra, --oathkeeper and --out are required (try --help)" >&2
  exit 2
fi
mkdir -p "$out"
out="$(cd "$out" && pwd)"

# build NAME SRC: go build the module at SRC into $out/NAME.
build() {
  local name="$1" src
  src="$(cd "$2" && pwd)"
  local modflag=()
  if [ ${#replaces[@]} -gt 0 ]; then
    local mod="$out/$name.modfile"
    mkdir -p "$mod"
    cp "$src/go.mod" "$mod/go.mod"
    cp "$src/go.sum" "$mod/go.sum"
    local r
    for r in "${replaces[@]}"; do
      local path="${r#*=}"
      path="$(cd "$path" && pwd)"
      (cd "$src" && go mod edit -modfile="$mod/go.mod" -replace "${r%%=*}=$path")
    done
    modflag=(-modfile="$mod/go.mod")
  fi
  git -C "$src" rev-parse HEAD >"$out/$name.commit"
  echo "== building $name at $(cat "$out/$name.commit") from $src" >&2
  (cd "$src" && CGO_ENABLED=0 go build -trimpath "${modflag[@]}" -o "$out/$name" .)
}

build hydra "$hydra"
build oathkeeper "$oathkeeper"
echo "== built $out/hydra and $out/oathkeeper" >&2
