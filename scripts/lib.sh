# Shared by scripts/setup, scripts/run and scripts/test: pinned tool versions, cache locations
# (outside the work tree) and PATH. Source it; do not run it.

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${GRAPPE_CACHE:-$HOME/.cache/grappe}"
TOOLS="$CACHE/tools"

CARGO_LEPTOS_VERSION=0.3.11
# The wasm-bindgen CLI must be exactly the version in Cargo.lock.
WASM_BINDGEN_VERSION="$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/"/, "", $3); print $3; exit}' "$REPO/Cargo.lock")"
# wasm-opt from npm's binaryen: Debian's binaryen 108 produces wasm that never hydrates.
BINARYEN_VERSION=132.0.0

export PATH="$TOOLS/cargo-leptos-$CARGO_LEPTOS_VERSION/bin:$TOOLS/wasm-bindgen-cli-$WASM_BINDGEN_VERSION/bin:$TOOLS/binaryen-$BINARYEN_VERSION/node_modules/.bin:$HOME/.cargo/bin:$PATH"
export GRAPPE_MANIFESTS="${GRAPPE_MANIFESTS:-$(cd "$REPO/.." && pwd)/shared/manifests}"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Runs a command and prints how long it took (for the cold/warm times in the README).
timed() {
  local label="$1"; shift
  local start=$SECONDS
  "$@"
  local rc=$?
  say "$label: $((SECONDS - start)) s"
  return $rc
}

# Serves the CNI manifests ($GRAPPE_MANIFESTS) on 127.0.0.1:PORT as the catalog's mirror (tests
# and the demo never download from GitHub). Sets MIRROR_PID; the caller stops it.
serve_manifests() {
  local port="$1"
  [[ -f "$GRAPPE_MANIFESTS/calico-v3.25.1.yaml" ]] || die "no CNI manifests in $GRAPPE_MANIFESTS (set GRAPPE_MANIFESTS)"
  python3 -m http.server "$port" --bind 127.0.0.1 --directory "$GRAPPE_MANIFESTS" >/dev/null 2>&1 &
  MIRROR_PID=$!
  for _ in $(seq 1 50); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/calico-v3.25.1.yaml" 2>/dev/null && return 0
    sleep 0.1
  done
  die "the manifest mirror did not start on port $port"
}
