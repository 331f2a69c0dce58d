#!/usr/bin/env bash
# System libraries PoseStudio needs on Debian: libusb for open3d's import, EGL/Vulkan for offscreen
# rendering (posestudio view --offscreen, the demo's render.png): Open3D's legacy visualizer draws on
# EGL with Mesa's CPU driver (libegl1, libegl-mesa0, swrast in libgl1-mesa-dri), its Filament
# renderer on Mesa's CPU Vulkan driver (mesa-vulkan-drivers). Installs only what is missing; needs
# root (or sudo) the first time.
set -euo pipefail
missing=()
# grep reads all of ldconfig's list (no -q): an early exit would kill ldconfig with SIGPIPE, which
# pipefail turns into a false "missing"
has_lib() { ldconfig -p | grep -F "$1" >/dev/null; }
has_lib 'libusb-1.0.so.0' || missing+=(libusb-1.0-0)
has_lib 'libGL.so.1' || missing+=(libgl1)
has_lib 'libgomp.so.1' || missing+=(libgomp1)
has_lib 'libEGL.so.1' || missing+=(libegl1)
has_lib 'libEGL_mesa.so.0' || missing+=(libegl-mesa0)
compgen -G '/usr/lib/*/dri/swrast_dri.so' >/dev/null || missing+=(libgl1-mesa-dri)
has_lib 'libvulkan_lvp.so' || missing+=(mesa-vulkan-drivers)
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
echo "installing system packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
