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

now() { date +%s; }

# build_set NAME MODULE@VERSION LDFLAGS PKG...
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
  echo "tools: building $name $modver: ${pkgs[*]##*/}"
  local t0 src="$TOOLS_DIR/src/$name"
  t0=$(now)
  rm -rf "$src" && mkdir -p "$src"
  if ! (
    cd "$src"
    go mod init "modelledger.local/tools/$name"
    local args=()
    for p in "${pkgs[@]}"; do args+=("$p@${modver#*@}"); done
    go get -tool "${args[@]}"
    GOBIN="$BIN" go install -trimpath -ldflags "$ldflags" tool
  ) >"$src.log" 2>&1; then
    echo "tools: FAILED to build $name $modver; last lines of $src.log:" >&2
    tail -n 25 "$src.log" >&2
    return 1
  fi
  echo "$want" > "$stamp"
  echo "tools: built $name in $(( $(now) - t0 ))s"
}

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

# Where the stock core.yaml / orderer.yaml live: the installed Fabric module.
# `go mod download` restores the module if the Go module cache was cleaned since.
FABRIC_SRC="$(cd "$TOOLS_DIR/src/fabric" && go mod download "$FM" && go list -m -f '{{.Dir}}' "$FM")"
if [[ ! -f "$FABRIC_SRC/sampleconfig/core.yaml" ]]; then
  echo "tools: stock core.yaml not found under '$FABRIC_SRC'" >&2
  exit 1
fi
echo "$FABRIC_SRC/sampleconfig" > "$TOOLS_DIR/fabric-sampleconfig.path"

echo "tools: ready in $BIN ($(( $(now) - T0 ))s)"
