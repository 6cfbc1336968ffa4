#!/usr/bin/env bash
# CI for the WASM backend's shipped module: installs the toolchain on Debian bookworm (as root,
# non-interactive, idempotent: a second run installs nothing) and checks that
# wasm/arraylstm_wasm.generated.ts is exactly what the Rust sources build.
#
#   bash wasm/ci.sh
#
# Cache $WASM_BINDGEN_ROOT (default ~/.cargo) between runs to skip the wasm-bindgen-cli build
# (a few minutes on two cores). Needs `deno` on PATH.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
cd "$(dirname "$0")/.."

# Debian's rustc 1.63 has a wasm32 standard library with simd128 (rustup's toolchains here have
# no wasm32 target), and Debian packages wasm-bindgen 0.2.83, so the crate builds offline.
# pkg-config, libssl-dev and gcc are for building wasm-bindgen-cli's dependencies; wabt (1.0.32)
# turns the marker calls of the second build into f32x4.relaxed_madd (see wasm/build.ts).
packages=(ca-certificates gcc pkg-config libssl-dev rustc cargo libstd-rust-dev-wasm32 lld
  librust-wasm-bindgen-dev wabt)
missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
if ((${#missing[@]})); then
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The CLI must be exactly the crate's wasm-bindgen version. Rust >= 1.84 refuses to compile
# wasm-bindgen < 0.2.88, so it is built with Debian's rustc too; Debian's cargo 1.65 reaches
# crates.io only through the sparse index, which it still calls unstable (hence RUSTC_BOOTSTRAP).
WASM_BINDGEN_ROOT="${WASM_BINDGEN_ROOT:-$HOME/.cargo}"
export WASM_BINDGEN="$WASM_BINDGEN_ROOT/bin/wasm-bindgen"
if ! "$WASM_BINDGEN" --version 2>/dev/null | grep -qx "wasm-bindgen 0.2.83"; then
  RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 /usr/bin/cargo -Z sparse-registry install \
    wasm-bindgen-cli --version =0.2.83 --locked --root "$WASM_BINDGEN_ROOT"
fi

# Host tests of the kernels, through the portable f32x4 stand-in of wasm/src/simd.rs (Debian's
# rustc: rustup's current toolchains refuse wasm-bindgen 0.2.83).
(cd wasm && RUSTC=/usr/bin/rustc /usr/bin/cargo test --locked --offline)

deno task build:wasm:check
