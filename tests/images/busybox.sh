#!/usr/bin/env bash
# Builds provisioner-test/busybox:latest, the image the engine tests run, from the
# machine's static busybox: the tests must not depend on reaching a registry.
# Idempotent: does nothing when the image is already there.
set -euo pipefail

image="provisioner-test/busybox:latest"

if docker image inspect "$image" >/dev/null 2>&1; then
  exit 0
fi

if [ ! -x /bin/busybox ]; then
  echo "/bin/busybox is missing: apt-get install busybox-static" >&2
  exit 1
fi
# A dynamically linked busybox would need the host's libc inside the image.
if command -v ldd >/dev/null 2>&1 && ldd /bin/busybox >/dev/null 2>&1; then
  echo "/bin/busybox is dynamically linked; the image needs the static one: apt-get install busybox-static" >&2
  exit 1
fi

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/www"
chmod 1777 "$root/tmp"
cp /bin/busybox "$root/bin/busybox"
for applet in sh cat echo sleep false true nc httpd ls id; do
  ln -s busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"

tar -C "$root" -c . | docker import \
  --change 'CMD ["/bin/sh"]' \
  --change 'ENV PATH=/bin' \
  - "$image" >/dev/null
echo "built $image"
