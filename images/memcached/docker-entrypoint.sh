#!/bin/sh
# Entrypoint of provisioner-offline/memcached:1.6, as upstream's: flags alone
# (`-m 64`) mean `memcached …`.
set -e

if [ "${1#-}" != "$1" ]; then
	set -- memcached "$@"
fi

exec "$@"
