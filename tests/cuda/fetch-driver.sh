#!/usr/bin/env bash
# Unpacks the NVIDIA driver's CUDA library (Debian non-free's libcuda1) into DEST, without
# installing it or touching the system's apt sources, for tests/cuda_kernels.rs's "driver without
# a device" test: on a machine with no GPU the real driver answers cuInit with
# CUDA_ERROR_NO_DEVICE. Usage: tests/cuda/fetch-driver.sh DEST
set -euo pipefail
dest=${1:?usage: fetch-driver.sh DEST}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $codename non-free" \
  > "$work/sources.list"
opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
      -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o Debug::NoLocking=1
      -o APT::Sandbox::User=root)
apt-get "${opts[@]}" update -qq
(cd "$work" && apt-get "${opts[@]}" download libcuda1 >/dev/null)
mkdir -p "$dest"
dpkg-deb -x "$work"/libcuda1_*.deb "$dest"
find "$dest" -name 'libcuda.so.1' -printf 'driver library: %p\n'
