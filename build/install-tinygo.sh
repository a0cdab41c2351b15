#!/usr/bin/env bash
# Installs TinyGo into the tools cache ($WASMGATE_CACHE/tinygo-$TINYGO_VERSION),
# built from its Go module source against Debian's LLVM, and prints the path of
# the tinygo command. Re-uses an existing install.
#
# Why it is built rather than downloaded: docs/RATIONALE.md ("TinyGo is built
# from source"); each workaround is explained below, where it is applied.
. "$(dirname "$0")/lib.sh"

prefix="$WASMGATE_CACHE/tinygo-$TINYGO_VERSION"
bin="$prefix/bin/tinygo"
if [ -x "$bin" ] && "$bin" version >/dev/null 2>&1; then
  echo "$bin"
  exit 0
fi

{
# clang/lld are run by TinyGo; llvm-dev/libclang-dev are linked through cgo;
# compiler-rt wasm32 builtins and wasi-libc seed TinyGo's library cache;
# binaryen provides wasm-opt.
apt_install gcc g++ "clang-$LLVM_MAJOR" "llvm-$LLVM_MAJOR-dev" "libclang-$LLVM_MAJOR-dev" \
  "lld-$LLVM_MAJOR" "libclang-rt-$LLVM_MAJOR-dev-wasm32" wasi-libc binaryen

work=$(mktemp -d "$WASMGATE_CACHE/.tinygo-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
# The module proxy refuses TinyGo's version list, so `go install pkg@version`
# fails; download the module zip by exact version and build it in place.
src=$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "github.com/tinygo-org/tinygo@$TINYGO_VERSION" |
      sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
test -d "$src"
root="$work/root"
cp -r "$src" "$root"
chmod -R u+w "$root"
(
  cd "$root"
  # espflasher (ESP32 flashing only) v0.8.1 is not served; v0.6.0 differs by
  # one argument of EraseFlash.
  go mod edit -replace tinygo.org/x/espflasher=tinygo.org/x/espflasher@v0.6.0
  sed -i 's/flasher.EraseFlash(progressFunc)/flasher.EraseFlash()/' main.go
  go build -mod=mod -tags "llvm$LLVM_MAJOR osusergo" -o build/tinygo .
  # src/net is a git submodule absent from the module zip; an empty directory
  # lets TinyGo fall back to upstream net subpackages (enough for wasi).
  mkdir -p src/net
)

stage="$work/prefix"
mkdir -p "$stage/bin"
mv "$root" "$stage/root"
# The wrapper seeds TinyGo's library cache with Debian's prebuilt wasi-libc and
# compiler-rt, because the module zip lacks their sources.
cat > "$stage/bin/tinygo" <<WRAP
#!/bin/sh
set -e
here=\$(cd "\$(dirname "\$0")/.." && pwd)
export TINYGOROOT="\${TINYGOROOT:-\$here/root}"
cache="\${XDG_CACHE_HOME:-\$HOME/.cache}/tinygo"
seed() { # seed <cache-dir-name> <lib.a> [include-dir]
  d="\$cache/\$1"
  [ -f "\$d/lib.a" ] && return 0
  mkdir -p "\$d"
  if [ -n "\${3:-}" ] && [ ! -d "\$d/include" ]; then
    t=\$(mktemp -d "\$d/include.XXXXXX"); cp -r "\$3"/. "\$t"/; chmod 755 "\$t"
    mv -T "\$t" "\$d/include" 2>/dev/null || rm -rf "\$t"
  fi
  cp "\$2" "\$d/lib.a.tmp.\$\$" && mv -f "\$d/lib.a.tmp.\$\$" "\$d/lib.a"
}
seed wasi-libc-wasm32-unknown-wasi-generic /usr/lib/wasm32-wasi/libc.a /usr/include/wasm32-wasi
seed wasi-libc+malloc-wasm32-unknown-wasi-generic /usr/lib/wasm32-wasi/libc.a /usr/include/wasm32-wasi
seed compiler-rt-wasm32-unknown-wasi-generic /usr/lib/llvm-$LLVM_MAJOR/lib/clang/$LLVM_MAJOR/lib/wasi/libclang_rt.builtins-wasm32.a
exec "\$here/root/build/tinygo" "\$@"
WRAP
chmod +x "$stage/bin/tinygo"
"$stage/bin/tinygo" version
rm -rf "$prefix"
mv "$stage" "$prefix"
} >&2
echo "$bin"
