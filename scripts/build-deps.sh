#!/usr/bin/env bash
# Debian packages the build and tests need: llama.cpp (vendored by
# llama-cpp-2) is built with cmake, and its bindings are generated with
# libclang; the full-disk test runs a node in a namespace of its own
# (unshare, nsenter from util-linux; pgrep from procps).
set -euo pipefail
missing=()
command -v cmake >/dev/null || missing+=(cmake)
ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || missing+=(libclang-dev)
command -v curl >/dev/null || missing+=(curl)
command -v nsenter >/dev/null || missing+=(util-linux)
command -v pgrep >/dev/null || missing+=(procps)
if ((${#missing[@]})); then
  sudo=""
  [[ "$(id -u)" != 0 ]] && sudo="sudo"
  echo "installing ${missing[*]} (apt-get)" >&2
  $sudo apt-get install -y -q "${missing[@]}" >/dev/null \
    || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q "${missing[@]}" >/dev/null; }
fi
