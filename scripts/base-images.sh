#!/usr/bin/env bash
# Builds Kyozo's local base images with `docker import` from a root folder of host binaries, because
# this machine has no image registry to pull from. Idempotent: an existing image is kept unless --force.
#
#   kyozo-local/node:20        the host's node + the libraries ldd lists + busybox (sh, wget, ...)
#   kyozo-local/static:latest  busybox from Debian's busybox-static (sh, httpd, wget, nc, ...)
#
# Both have /etc/passwd with a non-root user (node, uid 1000) and a world-writable /tmp.
# The images carry no kyozo.managed label on purpose: Kyozo's cleanup must never prune them.
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
STATIC_IMAGE="kyozo-local/static:latest"
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
  # Every absolute path ldd prints: the libraries and the dynamic loader.
  for lib in $(ldd "$node" | grep -o '/[^ ]*' | sort -u); do
    cp -L --parents "$lib" "$root/"
  done
  import_root "$root" "$NODE_IMAGE" \
    --change "ENV PATH=$IMAGE_PATH" \
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

if [ "$FORCE" = 1 ] || ! exists "$STATIC_IMAGE"; then
  build_static
  check_static
else
  echo "base-images: $STATIC_IMAGE exists (use --force to rebuild)"
fi

if [ "$FORCE" = 1 ] || ! exists "$NODE_IMAGE"; then
  build_node
  check_node
else
  echo "base-images: $NODE_IMAGE exists (use --force to rebuild)"
fi
