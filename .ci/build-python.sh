#!/usr/bin/env bash
# Builds a CPython interpreter for the CI matrix when the machine has none of that version.
# Debian bookworm ships only 3.11 and PyPI ships no interpreters, so the upstream source is taken from Ubuntu's
# archive (the .orig tarball is the unmodified python.org release), checked against its sha256, and built.
# Usage: .ci/build-python.sh 3.12 PREFIX   -> PREFIX/bin/python3.12 (3.12 and 3.13 are pinned below)
set -euo pipefail
version="$1"
prefix="$2"
case "$version" in
  3.12) release=3.12.3; sha256=56bfef1fdfc1221ce6720e43a661e3eb41785dd914ce99698d8c7896af4bdaa1 ;;
  3.13) release=3.13.7; sha256=5462f9099dfd30e238def83c71d91897d8caa5ff6ebc7a50f14d4802cdaaa79a ;;
  *) echo "error: no pinned source for Python $version; add its release and sha256 here" >&2; exit 2 ;;
esac
if [ -x "$prefix/bin/python$version" ]; then
  exit 0
fi
# The headers of the modules the package needs (ssl for pip, sqlite3, lzma, bz2, ctypes, zlib); on this machine
# they are already there, on a bare Debian they come from apt.
build_deps="libssl-dev libffi-dev zlib1g-dev libbz2-dev liblzma-dev libsqlite3-dev uuid-dev"
if command -v apt-get >/dev/null 2>&1 && ! dpkg -s $build_deps >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $build_deps >/dev/null
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
tarball="python${version}_${release}.orig.tar.xz"
curl -fsS --retry 3 -o "$work/$tarball" "http://archive.ubuntu.com/ubuntu/pool/main/p/python${version}/$tarball"
echo "$sha256  $work/$tarball" | sha256sum -c --quiet
tar -xJf "$work/$tarball" -C "$work"
cd "$work/Python-$release"
./configure --quiet --prefix="$prefix" >/dev/null
make -s -j"$(nproc)" >/dev/null 2>&1
make -s altinstall >/dev/null 2>&1
"$prefix/bin/python$version" -c "import ssl, sqlite3, lzma, bz2, ctypes, zlib; print('built', __import__('sys').version)"
