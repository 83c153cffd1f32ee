# Shared by scripts/ and bench/: pinned tool versions, cache locations (outside the work tree),
# PATH, and helpers to serve the manifests and start a Grappe. Source it; do not run it.

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${GRAPPE_CACHE:-$HOME/.cache/grappe}"
TOOLS="$CACHE/tools"
# One cargo target directory, outside the work tree: a fresh clone (CI's) then compiles Grappe's
# own crates only, not the whole dependency tree again (about 15 minutes on 2 cores). The site
# cargo-leptos writes stays in the work tree (Cargo.toml's site-root, target/site). Plain
# `cargo` in the work tree uses ./target unless this is exported too.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"

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

# The Rust tests as scripts/rust-tests builds and runs them; scripts/e2e builds the server with
# the same arguments, so that it is built once with one set of features (a plain `cargo build
# -p server` unifies features differently and compiles the dependency tree a second time).
RUST_TEST_ARGS=(--workspace --exclude frontend --locked)

# Builds Grappe in release mode (scripts/run, bench/). Its static assets are precompressed
# (brotli and gzip files beside them, which the server sends as they are): no compression per
# request of a 3.8 MB wasm, and brotli's best level instead of the level 4 used on the fly.
# cargo-leptos's gzip files are larger than gzip -9's (wasm: 1,638,533 B against 1,382,134),
# so those are made again.
build_release() {
  timed "cargo leptos build --release --precompress" cargo leptos build --release --precompress || return
  local f
  for f in "$REPO"/target/site/pkg/*.{wasm,js,css}; do
    [[ -f "$f" ]] && gzip -9 -c "$f" >"$f.gz"
  done
}

# Builds the frontend for the tests (debug), first removing the precompressed files a release
# build left beside the assets: the server would send those in place of the new build.
build_frontend() {
  rm -f "$REPO"/target/site/pkg/*.br "$REPO"/target/site/pkg/*.gz
  timed "cargo leptos build --frontend-only" cargo leptos build --frontend-only
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

# Writes a Grappe configuration to FILE: listening on 127.0.0.1:PORT, its database beside FILE,
# the site from target/site, the manifest mirror MIRROR_URL (if given) and the cluster NAME at
# KUBECONFIG (none when KUBECONFIG is empty).
#   write_config FILE PORT NAME KUBECONFIG [MIRROR_URL]
write_config() {
  local file="$1" port="$2" name="$3" kubeconfig="$4" mirror="${5:-}"
  {
    echo "listen = \"127.0.0.1:$port\""
    echo "database = \"$(dirname "$file")/grappe.db\""
    echo "site_root = \"$REPO/target/site\""
    if [[ -n "$mirror" ]]; then echo "manifest_mirror = \"$mirror\""; fi
    if [[ -n "$kubeconfig" ]]; then
      printf '\n[[clusters]]\nname = "%s"\nkubeconfig = "%s"\n' "$name" "$kubeconfig"
      # A lab started with --hosts on: its nodes are reached over SSH as root with its key.
      local key
      key="$(dirname "$kubeconfig")/ssh/id_ed25519"
      if [[ -f "$key" ]]; then
        printf '\n[clusters.ssh]\nuser = "root"\nkey = "%s"\n' "$key"
      fi
    fi
  } > "$file"
}

# Adds USER with ROLE and a fresh random password (left in PASSWORD), starts `BIN serve` with
# CONFIG (output in LOG, pid in SERVER; the caller stops it) and waits until /healthz answers
# on PORT.
#   start_grappe BIN CONFIG PORT LOG USER ROLE
start_grappe() {
  local bin="$1" config="$2" port="$3" log="$4" user="$5" role="$6"
  PASSWORD="$user-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  echo "$PASSWORD" | "$bin" --config "$config" user add "$user" --role "$role" --password-stdin >/dev/null
  "$bin" --config "$config" serve > "$log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 150); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null && return 0
    kill -0 "$SERVER" 2>/dev/null || die "grappe serve stopped: see $log"
    sleep 0.2
  done
  die "grappe serve did not answer on port $port within 30 s: see $log"
}
