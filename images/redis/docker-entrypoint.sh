#!/bin/sh
# Entrypoint of provisioner-offline/redis:7: the upstream redis image's contract on
# Debian's redis-server. Flags alone (`--requirepass x`) or a config file mean
# `redis-server …`; as root it owns /data to redis and re-runs itself as redis (setpriv:
# gosu is not in Debian's minbase). Upstream's redis is built with protected mode off;
# Debian's is not, so without a config file the server starts with --protected-mode no
# (and, with no config file, Redis 7 binds every interface), the arguments after it.
set -e

# First argument a flag (`-…`) or a config file (`….conf`): the arguments of redis-server.
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
	set -- redis-server "$@"
fi

if [ "$1" = 'redis-server' ] && [ "$(id -u)" = '0' ]; then
	find . \! -user redis -exec chown redis '{}' +
	HOME=/var/lib/redis exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi

if [ "$1" = 'redis-server' ]; then
	shift
	case "${1:-}" in
		# `redis-server FILE …` (or `-` for stdin): the config decides protected mode.
		''|--*) set -- redis-server --protected-mode no "$@" ;;
		*) set -- redis-server "$@" ;;
	esac
	# As upstream: a private umask unless one was chosen.
	if [ "$(umask)" = '0022' ]; then
		umask 0077
	fi
fi

exec "$@"
