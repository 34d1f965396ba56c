#!/usr/bin/env bash
# Build the pinned Fabric, Fabric CA and MinIO binaries into the project-local
# tools folder with `go install`. Versions come from tools/versions.env only.
#
# Each tool set gets its own throw-away Go module under $TOOLS_DIR/src/<set>,
# so the tools' dependency graphs never mix. A stamp file records what was
# built; when it matches the pins and every binary is present, the set is
# skipped, which makes a second run take seconds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="${MODELLEDGER_TOOLS_DIR:-$ROOT/.tools}"
BIN="$TOOLS_DIR/bin"
# shellcheck source=versions.env
source "$ROOT/tools/versions.env"

export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
mkdir -p "$BIN" "$TOOLS_DIR/src" "$TOOLS_DIR/stamps"
# Built sets are kept in the user's cache too, keyed by everything that shapes the binaries (pins, packages,
# ldflags, Go version and platform), so a fresh clone on a machine that built them before copies them in a
# second instead of linking them again (~20 s warm). Go's own caches only save the compile, not the link.
# No cache without a home for it (XDG_CACHE_HOME or HOME unset).
CACHE=""
if [[ -n "${XDG_CACHE_HOME:-}" || -n "${HOME:-}" ]]; then CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/modelledger/tools"; fi
# Copies a stopped build left half-written (never a set: see to_cache) are removed after a day.
[[ -n "$CACHE" && -d "$CACHE" ]] && find "$CACHE" -maxdepth 1 -name '*.tmp.*' -mmin +1440 -exec rm -rf {} + 2>/dev/null
GO_ID="$(go env GOVERSION GOOS GOARCH GOAMD64 CGO_ENABLED CC | tr '\n' ' ') $GOFLAGS"

now() { date +%s; }

# Each set whose stamp is stale is built in the background, all at once: `go get` (module resolution and any
# download) waits on the network and the links are mostly single-threaded, so the sets overlap well even on
# two cores, while `go build` itself already compiles a set's packages on every core.
NAMES=() PIDS=()

# build_set NAME MODULE@VERSION LDFLAGS PKG...
# Only the binaries the project runs are built: network/binaries.py's REQUIRED, and minio.
build_set() {
  local name="$1" modver="$2" ldflags="$3"; shift 3
  local pkgs=("$@") stamp="$TOOLS_DIR/stamps/$name" want missing=0
  want="$modver ${pkgs[*]} $ldflags"
  for p in "${pkgs[@]}"; do [[ -x "$BIN/$(basename "$p")" ]] || missing=1; done
  [[ -f "$TOOLS_DIR/src/$name/go.mod" ]] || missing=1
  if [[ $missing == 0 && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "tools: $name $modver is up to date"
    return 0
  fi
  local cached=""
  [[ -n "$CACHE" ]] && cached="$CACHE/$name-$(printf '%s %s' "$want" "$GO_ID" | sha256sum | cut -c1-24)"
  if [[ -n "$cached" ]] && from_cache "$cached" "$name" "$want" "${pkgs[@]}"; then
    echo "tools: $name $modver copied from the cache $cached"
    return 0
  fi
  echo "tools: building $name $modver: ${pkgs[*]##*/} (log: $TOOLS_DIR/src/$name.log)"
  rm -f "$TOOLS_DIR/src/$name.result"
  build_in_background "$name" "$modver" "$ldflags" "$want" "$cached" "${pkgs[@]}" &
  NAMES+=("$name") PIDS+=("$!")
}

# from_cache DIR NAME STAMP PKG...: installs a set built before (its binaries, and the go.mod/go.sum that later
# steps read) from the user's cache; fails, changing nothing that matters, if any file is missing there.
from_cache() {
  local dir="$1" name="$2" want="$3"; shift 3
  local p f src="$TOOLS_DIR/src/$name"
  from_cache_complete "$dir" "$@" || return 1
  rm -rf "$src" && mkdir -p "$src" && cp "$dir/go.mod" "$dir/go.sum" "$src/" || return 1
  for p in "$@"; do
    f="$(basename "$p")"
    # A hard link when the cache is on the same file system, else a copy; then an atomic rename into place.
    { ln -f "$dir/$f" "$BIN/.$f.tmp" 2>/dev/null || cp -f "$dir/$f" "$BIN/.$f.tmp"; } && mv -f "$BIN/.$f.tmp" "$BIN/$f" \
      || return 1
  done
  echo "$want" > "$TOOLS_DIR/stamps/$name"
}

# to_cache DIR NAME PKG...: keeps a freshly built set in the user's cache (best effort: a failure only costs
# the next clone a build). Written to a temporary folder first, so a partial copy is never seen as a set.
to_cache() {
  local dir="$1" name="$2"; shift 2
  local p tmp ok=1
  mkdir -p "$(dirname "$dir")" 2>/dev/null && tmp="$(mktemp -d "$dir.tmp.XXXXXX" 2>/dev/null)" || return 0
  cp "$TOOLS_DIR/src/$name/go.mod" "$TOOLS_DIR/src/$name/go.sum" "$tmp/" 2>/dev/null || ok=0
  for p in "$@"; do [[ $ok == 1 ]] && { cp "$BIN/$(basename "$p")" "$tmp/" 2>/dev/null || ok=0; }; done
  # mv -T never moves into an existing folder: when another clone stored the same set first, keep theirs.
  if [[ $ok == 1 ]]; then
    [[ -d "$dir" ]] && ! from_cache_complete "$dir" "$@" && rm -rf "$dir"
    mv -T "$tmp" "$dir" 2>/dev/null && return 0
  fi
  rm -rf "$tmp"
  return 0
}

# from_cache_complete DIR PKG...: the cached set holds every binary and the module files.
from_cache_complete() {
  local dir="$1" p; shift
  for p in "$@"; do [[ -x "$dir/$(basename "$p")" ]] || return 1; done
  [[ -f "$dir/go.mod" && -f "$dir/go.sum" ]]
}

# build_in_background NAME MODULE@VERSION LDFLAGS STAMP PKG...: builds one set; writes its stamp on success
# and "<exit code> <seconds>" to src/NAME.result either way.
build_in_background() {
  local name="$1" modver="$2" ldflags="$3" want="$4" cached="$5"; shift 5
  local pkgs=("$@") src="$TOOLS_DIR/src/$name" t0 rc=0
  t0=$(now)
  rm -rf "$src" && mkdir -p "$src"
  local args=()
  for p in "${pkgs[@]}"; do args+=("$p@${modver#*@}"); done
  # `set -e` does not apply left of `||`: each step is chained explicitly.
  (
    cd "$src" \
      && go mod init "modelledger.local/tools/$name" \
      && go get -tool "${args[@]}" \
      && GOBIN="$BIN" go install -trimpath -ldflags "$ldflags" tool
  ) >"$src.log" 2>&1 || rc=$?
  if [[ $rc == 0 ]]; then
    echo "$want" > "$TOOLS_DIR/stamps/$name"
    [[ -n "$cached" ]] && to_cache "$cached" "$name" "${pkgs[@]}"
  fi
  echo "$rc $(( $(now) - t0 ))" > "$src.result"
}

# A stopped `make tools` (Ctrl-C, TERM) stops its builds too: each background build and the go commands under it.
# The whole tree is collected first: a go command whose subshell died first would run on as an orphan.
descendants() {
  local child
  for child in $(pgrep -P "$1"); do echo "$child"; descendants "$child"; done
}
stop_builds() {
  local pid tree=()
  for pid in "${PIDS[@]}"; do
    # shellcheck disable=SC2207  # pids are words
    tree+=("$pid" $(descendants "$pid"))
  done
  [[ ${#tree[@]} -gt 0 ]] && kill -TERM "${tree[@]}" 2>/dev/null
  return 0
}
trap 'stop_builds; exit 130' INT TERM

T0=$(now)
FM="$FABRIC_MODULE"
build_set fabric "$FM@$FABRIC_MODULE_VERSION" \
  "-X $FM/common/metadata.Version=$FABRIC_VERSION -X $FM/common/metadata.CommitSHA=$FABRIC_COMMIT" \
  "$FM/cmd/peer" "$FM/cmd/orderer" "$FM/cmd/configtxgen" "$FM/cmd/configtxlator" "$FM/cmd/osnadmin"

CM="$FABRIC_CA_MODULE"
build_set fabric-ca "$CM@$FABRIC_CA_MODULE_VERSION" \
  "-X $CM/lib/metadata.Version=$FABRIC_CA_VERSION" \
  "$CM/cmd/fabric-ca-server" "$CM/cmd/fabric-ca-client"

MM="$MINIO_MODULE"
build_set minio "$MM@$MINIO_MODULE_VERSION" \
  "-s -w -X $MM/cmd.Version=$MINIO_VERSION -X $MM/cmd.ReleaseTag=$MINIO_RELEASE_TAG -X $MM/cmd.CommitID=$MINIO_COMMIT -X $MM/cmd.ShortCommitID=${MINIO_COMMIT:0:12} -X $MM/cmd.CopyrightYear=${MINIO_VERSION:0:4}" \
  "$MM"

# Progress: every 10 s, which sets are still building and for how long; each set's time when it ends.
failed=0
pending=("${!NAMES[@]}")
last=$(now)
while [[ ${#pending[@]} -gt 0 ]]; do
  sleep 1
  still=()
  for i in "${pending[@]}"; do
    name="${NAMES[$i]}" result="$TOOLS_DIR/src/${NAMES[$i]}.result"
    if kill -0 "${PIDS[$i]}" 2>/dev/null; then
      still+=("$i")
      continue
    fi
    wait "${PIDS[$i]}" || true
    read -r rc secs < "$result" || { rc=1; secs="?"; }
    if [[ $rc == 0 ]]; then
      echo "tools: built $name in ${secs}s"
    else
      failed=1
      echo "tools: FAILED to build $name after ${secs}s; last lines of $TOOLS_DIR/src/$name.log:" >&2
      tail -n 25 "$TOOLS_DIR/src/$name.log" >&2
    fi
  done
  pending=("${still[@]}")
  if [[ ${#pending[@]} -gt 0 && $(( $(now) - last )) -ge 10 ]]; then
    last=$(now)
    running=()
    for i in "${pending[@]}"; do running+=("${NAMES[$i]}"); done
    echo "tools: still building ${running[*]}… $(( last - T0 ))s"
  fi
done
[[ $failed == 0 ]] || exit 1

# Where the stock core.yaml / orderer.yaml live: the installed Fabric module.
# `go mod download` restores the module if the Go module cache was cleaned since.
FABRIC_SRC="$(cd "$TOOLS_DIR/src/fabric" && go mod download "$FM" && go list -m -f '{{.Dir}}' "$FM")"
if [[ ! -f "$FABRIC_SRC/sampleconfig/core.yaml" ]]; then
  echo "tools: stock core.yaml not found under '$FABRIC_SRC'" >&2
  exit 1
fi
echo "$FABRIC_SRC/sampleconfig" > "$TOOLS_DIR/fabric-sampleconfig.path"

echo "tools: ready in $BIN ($(( $(now) - T0 ))s)"
