#!/usr/bin/env bash
# Builds Kyozo's local base images with `docker import` from a root folder of host binaries, because
# this machine has no image registry to pull from. Idempotent: an existing image is kept unless --force.
#
#   kyozo-local/node:20        the host's node + npm, npx and corepack (pnpm/yarn) + the libraries ldd
#                              lists + busybox (sh, wget, env, ...)
#   kyozo-local/python:3       the host's real /usr/bin/python3 (never a pyenv shim) with its standard
#                              library, pip and venv (ensurepip's wheels) + busybox
#   kyozo-local/static:latest  busybox from Debian's busybox-static (sh, httpd, wget, nc, ...)
#
# All have /etc/passwd with a non-root user (node, uid 1000) and a world-writable /tmp.
# The images carry no kyozo.managed label on purpose: Kyozo's cleanup must never prune them.
# Each carries kyozo.base-image.version: an image built by an older version of this script is
# rebuilt (what an image holds changes with the script, not only with its presence).
set -euo pipefail

FORCE=0
for arg in "$@"; do
  case "$arg" in
    --force | -f) FORCE=1 ;;
    -h | --help)
      echo "usage: $0 [--force]"
      exit 0
      ;;
    *)
      echo "unknown argument: $arg" >&2
      exit 2
      ;;
  esac
done

NODE_IMAGE="kyozo-local/node:20"
PYTHON_IMAGE="kyozo-local/python:3"
STATIC_IMAGE="kyozo-local/static:latest"
# Bump when an image's content changes: older images are then rebuilt without --force.
VERSION_LABEL="kyozo.base-image.version"
NODE_VERSION=4
PYTHON_VERSION=2
STATIC_VERSION=1
IMAGE_PATH="/usr/local/bin:/usr/local/sbin:/usr/bin:/usr/sbin:/bin:/sbin"

if ! docker info >/dev/null 2>&1; then
  echo "base-images: docker engine not reachable (run scripts/start-docker.sh)" >&2
  exit 1
fi

BUSYBOX="$(command -v busybox || true)"
if [ -n "$BUSYBOX" ] && ! file -L "$BUSYBOX" 2>/dev/null | grep -q "statically linked"; then
  BUSYBOX=""
fi
[ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q "statically linked" && BUSYBOX=/bin/busybox
if [ -z "$BUSYBOX" ]; then
  echo "base-images: a static busybox is needed: apt-get install -y busybox-static" >&2
  exit 1
fi

WORK="$(mktemp -d /tmp/kyozo-base-images.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

exists() { docker image inspect "$1" >/dev/null 2>&1; }
# Current: present and built by this version of the script.
current() {
  local have
  have="$(docker image inspect -f "{{index .Config.Labels \"$VERSION_LABEL\"}}" "$1" 2>/dev/null || true)"
  [ "$have" = "$2" ]
}
# The whole C runtime, as a Debian base image has it (libc6, libgcc-s1, libstdc++6): native addons
# that packages download (rollup, esbuild, sharp, wheels) link against more than node itself does.
copy_c_runtime() {
  local root="$1" libc dir lib
  libc="$(ldd "$2" | grep -o '/[^ ]*/libc\.so\.6' | head -n1)"
  [ -n "$libc" ] || return 0
  dir="$(dirname "$(readlink -f "$libc")")"
  for lib in "$dir"/{libc,libm,libdl,libpthread,librt,libutil,libresolv,libanl,libnss_files,libnss_dns,libgcc_s,libstdc++,libz,libcrypt}.so*; do
    [ -e "$lib" ] || continue
    mkdir -p "$root$dir"
    cp -a "$lib" "$root$dir/"
  done
  return 0
}

# Every absolute path ldd prints for the given binaries: libraries and the dynamic loader.
copy_libs() {
  local root="$1" lib
  shift
  for lib in $(ldd "$@" 2>/dev/null | grep -o '/[^ ]*' | grep -v ':$' | sort -u); do
    [ -e "$lib" ] && cp -L --parents "$lib" "$root/"
  done
}

# Common skeleton: users, /tmp, busybox with one symlink per applet.
skeleton() {
  local root="$1"
  mkdir -p "$root"/{bin,etc,tmp,root,home/node,usr/bin,usr/local/bin,var/www}
  chmod 1777 "$root/tmp"
  chmod 700 "$root/root"
  cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
node:x:1000:1000:node:/home/node:/bin/sh
EOF
  cat >"$root/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
node:x:1000:
EOF
  echo "hosts: files dns" >"$root/etc/nsswitch.conf"
  chown 1000:1000 "$root/home/node"
  cp "$BUSYBOX" "$root/bin/busybox"
  # `#!/usr/bin/env node` (npm, npx, corepack and most package bins) needs env at that path.
  ln -s /bin/busybox "$root/usr/bin/env"
  local applet
  for applet in $("$BUSYBOX" --list); do
    [ "$applet" = "busybox" ] && continue
    [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
  done
}

import_root() {
  local root="$1" image="$2" old new
  shift 2
  old="$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)"
  new="$(tar --numeric-owner -C "$root" -c . | docker import "$@" - "$image")"
  # A rebuild leaves the previous image dangling: drop it unless something still uses it.
  if [ -n "$old" ] && [ "$old" != "$new" ]; then docker rmi "$old" >/dev/null 2>&1 || true; fi
  echo "base-images: built $image"
}

build_static() {
  local root="$WORK/static"
  skeleton "$root"
  echo "kyozo static" >"$root/var/www/index.html"
  import_root "$root" "$STATIC_IMAGE" \
    --change "LABEL $VERSION_LABEL=$STATIC_VERSION" \
    --change "ENV PATH=$IMAGE_PATH" \
    --change 'WORKDIR /' \
    --change 'CMD ["sh"]'
}

build_node() {
  local root="$WORK/node" node lib
  node="$(readlink -f "$(command -v node)")"
  if [ -z "$node" ] || [ ! -x "$node" ]; then
    echo "base-images: node is not installed on this machine" >&2
    exit 1
  fi
  skeleton "$root"
  cp "$node" "$root/usr/local/bin/node"
  ln -s /usr/local/bin/node "$root/usr/bin/node"
  copy_libs "$root" "$node"
  copy_c_runtime "$root" "$node"
  # npm and corepack as the host has them (Debian/NodeSource put them next to node's prefix).
  local modules="" tool
  for modules in "$(dirname "$(dirname "$node")")/lib/node_modules" /usr/lib/node_modules /usr/local/lib/node_modules; do
    [ -f "$modules/npm/bin/npm-cli.js" ] && break
  done
  if [ ! -f "$modules/npm/bin/npm-cli.js" ]; then
    echo "base-images: npm is not installed next to node on this machine (apt-get install -y npm)" >&2
    exit 1
  fi
  mkdir -p "$root/usr/local/lib/node_modules"
  cp -a "$modules/npm" "$root/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
  if [ -f "$modules/corepack/dist/corepack.js" ]; then
    cp -a "$modules/corepack" "$root/usr/local/lib/node_modules/corepack"
    ln -s ../lib/node_modules/corepack/dist/corepack.js "$root/usr/local/bin/corepack"
    # pnpm and yarn through corepack, as in the official image (fetched on first use). Corepack's
    # own known-good versions by default: "latest" needs registry signatures a mirror may not carry.
    for tool in pnpm pnpx yarn yarnpkg; do
      [ -f "$root/usr/local/lib/node_modules/corepack/dist/$tool.js" ] &&
        ln -s ../lib/node_modules/corepack/dist/$tool.js "$root/usr/local/bin/$tool"
    done
  else
    echo "base-images: corepack not found next to npm: pnpm/yarn projects will need it" >&2
  fi
  import_root "$root" "$NODE_IMAGE" \
    --change "LABEL $VERSION_LABEL=$NODE_VERSION" \
    --change "ENV PATH=$IMAGE_PATH" \
    --change 'ENV COREPACK_DEFAULT_TO_LATEST=0 COREPACK_ENABLE_DOWNLOAD_PROMPT=0' \
    --change 'ENV NODE_ENV=production' \
    --change 'WORKDIR /home/node' \
    --change 'CMD ["node"]'
}

check_node() {
  local out
  out="$(docker run --rm "$NODE_IMAGE" node -e 'console.log(1)')"
  [ "$out" = "1" ] || {
    echo "base-images: $NODE_IMAGE cannot run node (got: $out)" >&2
    exit 1
  }
  docker run --rm "$NODE_IMAGE" sh -c 'command -v wget >/dev/null' || {
    echo "base-images: $NODE_IMAGE has no wget" >&2
    exit 1
  }
  out="$(docker run --rm "$NODE_IMAGE" npm --version)" || {
    echo "base-images: $NODE_IMAGE cannot run npm (got: $out)" >&2
    exit 1
  }
}

# The real interpreter: /usr/bin/python3 (a pyenv shim first on PATH is a shell script).
host_python() {
  local py
  for py in /usr/bin/python3 /usr/local/bin/python3; do
    [ -x "$py" ] && file -L "$py" 2>/dev/null | grep -q ELF && {
      readlink -f "$py"
      return
    }
  done
}

build_python() {
  local root="$WORK/python" py ver stdlib pip
  py="$(host_python)"
  if [ -z "$py" ]; then
    echo "base-images: no python3 binary in /usr/bin (apt-get install -y python3 python3-pip python3-venv)" >&2
    return 1
  fi
  ver="$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
  stdlib="$("$py" -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')"
  pip="$("$py" -c 'import os, pip; print(os.path.dirname(pip.__file__))' 2>/dev/null || true)"
  if [ -z "$pip" ]; then
    echo "base-images: python3 on this machine has no pip (apt-get install -y python3-pip python3-venv)" >&2
    return 1
  fi
  skeleton "$root"
  mkdir -p "$root/usr/local/bin" "$root/usr/lib/python3/dist-packages"
  cp -L --parents "$py" "$root/"
  ln -sf "$(basename "$py")" "$root/$(dirname "$py")/python3"
  ln -sf "$(basename "$py")" "$root/$(dirname "$py")/python"
  # The standard library without its tests; the host's own site packages stay out, except pip.
  tar -C / --exclude="${stdlib#/}/test" --exclude="${stdlib#/}/EXTERNALLY-MANAGED" -c "${stdlib#/}" | tar -C "$root" -x
  cp -a "$pip" "$root/usr/lib/python3/dist-packages/pip"
  # venv: Debian's ensurepip installs pip and setuptools from these wheels.
  if [ -d /usr/share/python-wheels ]; then
    mkdir -p "$root/usr/share"
    cp -a /usr/share/python-wheels "$root/usr/share/python-wheels"
  fi
  copy_libs "$root" "$py" "$stdlib"/lib-dynload/*.so
  copy_c_runtime "$root" "$py"
  printf '#!/bin/sh\nexec %s -m pip "$@"\n' "$py" >"$root/usr/local/bin/pip"
  chmod 755 "$root/usr/local/bin/pip"
  ln -s pip "$root/usr/local/bin/pip3"
  import_root "$root" "$PYTHON_IMAGE" \
    --change "LABEL $VERSION_LABEL=$PYTHON_VERSION" \
    --change "LABEL kyozo.python.version=$ver" \
    --change "ENV PATH=$IMAGE_PATH" \
    --change 'ENV LANG=C.UTF-8 PYTHONUNBUFFERED=1' \
    --change 'WORKDIR /home/node' \
    --change 'CMD ["python3"]'
}

check_python() {
  local out
  out="$(docker run --rm "$PYTHON_IMAGE" sh -c 'python -m venv /tmp/v && /tmp/v/bin/pip --version >/dev/null && python -c "import ssl, sqlite3, json; print(1)"')" || true
  [ "$out" = "1" ] || {
    echo "base-images: $PYTHON_IMAGE cannot make a venv with pip (got: $out)" >&2
    exit 1
  }
}

# An httpd inside the image answers a wget inside the same container (no traffic leaves the container).
check_static() {
  local out
  out="$(docker run --rm "$STATIC_IMAGE" sh -c 'httpd -p 127.0.0.1:8080 -h /var/www && sleep 0.3 && wget -q -O- http://127.0.0.1:8080/')"
  [ "$out" = "kyozo static" ] || {
    echo "base-images: $STATIC_IMAGE httpd check failed (got: $out)" >&2
    exit 1
  }
}

if [ "$FORCE" = 1 ] || ! current "$STATIC_IMAGE" "$STATIC_VERSION"; then
  build_static
  check_static
else
  echo "base-images: $STATIC_IMAGE is current (use --force to rebuild)"
fi

if [ "$FORCE" = 1 ] || ! current "$NODE_IMAGE" "$NODE_VERSION"; then
  build_node
  check_node
else
  echo "base-images: $NODE_IMAGE is current (use --force to rebuild)"
fi

if [ "$FORCE" = 1 ] || ! current "$PYTHON_IMAGE" "$PYTHON_VERSION"; then
  build_python && check_python
else
  echo "base-images: $PYTHON_IMAGE is current (use --force to rebuild)"
fi
