#!/usr/bin/env bash
# Entrypoint of provisioner-offline/rabbitmq:3: the upstream rabbitmq image's contract on
# Debian's rabbitmq-server. As root, `rabbitmq-server` gets /var/lib/rabbitmq owned by
# rabbitmq, and any rabbitmq* command re-runs itself as rabbitmq (setpriv: gosu is not in
# Debian's minbase). RABBITMQ_DEFAULT_USER / _PASS / _VHOST become a conf.d file the
# broker reads when it initialises an empty node, as upstream's entrypoint used to do.
set -Eeuo pipefail

if [[ "$1" == rabbitmq* ]] && [ "$(id -u)" = '0' ]; then
	if [ "$1" = 'rabbitmq-server' ]; then
		find /var/lib/rabbitmq \! -user rabbitmq -exec chown rabbitmq:rabbitmq '{}' +
	fi
	exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups "${BASH_SOURCE[0]}" "$@"
fi

if [ "$1" = 'rabbitmq-server' ]; then
	defaults=/etc/rabbitmq/conf.d/05-docker-env-defaults.conf
	# A private file: it holds the default password.
	umask 0077
	rm -f "$defaults"
	for var in RABBITMQ_DEFAULT_USER RABBITMQ_DEFAULT_PASS RABBITMQ_DEFAULT_VHOST; do
		value="${!var:-}"
		[ -n "$value" ] || continue
		# rabbitmq.conf has no quoting: a value runs to the end of its line.
		case "$value" in
			*$'\n'*) echo >&2 "error: $var contains a newline"; exit 1 ;;
		esac
		key="$(tr '[:upper:]' '[:lower:]' <<<"${var#RABBITMQ_}")"
		printf '%s = %s\n' "$key" "$value" >> "$defaults"
	done
	umask 0022
fi

# As upstream: long node names when the hostname is a fully qualified one (but not for
# the image's own rabbit@localhost, which is a short name everywhere).
if [ -z "${RABBITMQ_USE_LONGNAME:-}" ] && [ "${RABBITMQ_NODENAME:-}" != 'rabbit@localhost' ] \
	&& [ "$(hostname)" != "$(hostname -s)" ]; then
	export RABBITMQ_USE_LONGNAME=true
fi

exec "$@"
