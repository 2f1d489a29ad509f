#!/usr/bin/env bash
# Debian packages the build needs: llama.cpp (vendored by llama-cpp-2) is
# built with cmake, and its bindings are generated with libclang.
set -euo pipefail
missing=()
command -v cmake >/dev/null || missing+=(cmake)
ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || missing+=(libclang-dev)
command -v curl >/dev/null || missing+=(curl)
if ((${#missing[@]})); then
  sudo=""
  [[ "$(id -u)" != 0 ]] && sudo="sudo"
  echo "installing ${missing[*]} (apt-get)" >&2
  $sudo apt-get install -y -q "${missing[@]}" >/dev/null \
    || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q "${missing[@]}" >/dev/null; }
fi
