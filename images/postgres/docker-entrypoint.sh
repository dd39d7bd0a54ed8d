#!/usr/bin/env bash
# Entrypoint of provisioner-offline/postgres:15: the contract of the upstream postgres
# image's docker-entrypoint.sh, on Debian's packages. As root it prepares PGDATA and
# re-runs itself as postgres (setpriv: gosu is not in Debian's minbase); on an empty
# PGDATA it runs initdb, sets up network access and POSTGRES_DB, runs
# /docker-entrypoint-initdb.d/*; then it execs the server with the given arguments.
set -Eeo pipefail

# Like upstream: VAR or VAR_FILE (the value read from that file), not both.
file_env() {
	local var="$1" def="${2:-}" file_var="${1}_FILE"
	if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
		echo >&2 "error: both $var and $file_var are set (but are exclusive)"
		exit 1
	fi
	local val="$def"
	if [ -n "${!var:-}" ]; then
		val="${!var}"
	elif [ -n "${!file_var:-}" ]; then
		val="$(< "${!file_var}")"
	fi
	export "$var"="$val"
	unset "$file_var"
}

# initdb with the superuser's password read from a pipe (never on a command line; the
# process substitution must be on initdb's own line: bash 5.2 closes it once the command
# that created it ends). POSTGRES_INITDB_ARGS is word-split, as upstream does.
init_db() {
	local auth="$1" initdb='initdb --username="$POSTGRES_USER" --auth-local=trust --auth-host="$auth"'
	if [ -n "$POSTGRES_PASSWORD" ]; then
		eval "$initdb"' --pwfile=<(printf "%s\n" "$POSTGRES_PASSWORD") '"$POSTGRES_INITDB_ARGS"
	else
		eval "$initdb $POSTGRES_INITDB_ARGS"
	fi
}

# `docker run IMAGE -c name=value` means `postgres -c name=value`.
if [ "${1:0:1}" = '-' ]; then
	set -- postgres "$@"
fi

if [ "$1" != 'postgres' ]; then
	exec "$@"
fi

export PGDATA="${PGDATA:-/var/lib/postgresql/data}"

if [ "$(id -u)" = '0' ]; then
	mkdir -p "$PGDATA" /var/run/postgresql
	chmod 00700 "$PGDATA" || :
	find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' +
	chown postgres:postgres /var/run/postgresql
	chmod 3777 /var/run/postgresql
	HOME=/var/lib/postgresql exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi

# First-start initialisation is marked as under way beside PGDATA (on the volume when
# PGDATA is a folder in it, as the provisioner's plugin sets it) until it has finished.
# A container killed in the middle (during initdb or the temporary server) leaves the
# mark: the folder holds no user data yet, so it is cleared and initialised again,
# rather than started half-made (no network access, no password, no database).
initialising="$(dirname "$PGDATA")/.$(basename "$PGDATA").initialising"
if [ -e "$initialising" ]; then
	echo >&2 "$0: the first-start initialisation of $PGDATA was interrupted; starting it again"
	find "$PGDATA" -mindepth 1 -delete
	rm -f "$initialising"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
	: > "$initialising"
	file_env POSTGRES_PASSWORD
	file_env POSTGRES_USER postgres
	file_env POSTGRES_DB "$POSTGRES_USER"
	file_env POSTGRES_INITDB_ARGS
	auth="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"

	if [ -z "$POSTGRES_PASSWORD" ] && [ "$auth" != 'trust' ]; then
		cat >&2 <<-'EOE'
			Error: Database is uninitialized and superuser password is not specified.
			       You must specify POSTGRES_PASSWORD to a non-empty value for the
			       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".

			       You may also use "POSTGRES_HOST_AUTH_METHOD=trust" to allow all
			       connections without a password. This is *not* recommended.
		EOE
		exit 1
	fi

	init_db "$auth"

	printf '\nhost all all all %s\n' "$auth" >> "$PGDATA/pg_hba.conf"
	printf "\nlisten_addresses = '*'\n" >> "$PGDATA/postgresql.conf"

	# The temporary server runs only when there is something for it to do: a
	# POSTGRES_DB to create or init scripts to run. Otherwise it would start and stop
	# for nothing, and that round trip is a third of the first start's CPU (upstream
	# always makes it; the outcome is the same).
	setup=
	[ "$POSTGRES_DB" != 'postgres' ] && setup=yes
	for f in /docker-entrypoint-initdb.d/*; do
		[ -e "$f" ] && setup=yes
	done

	if [ -n "$setup" ]; then
		# A temporary server on the unix socket only, so nothing connects before setup ends.
		PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p ${PGPORT:-5432}" -w start

		psql=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
		if [ "$POSTGRES_DB" != 'postgres' ]; then
			"${psql[@]}" --dbname postgres --set db="$POSTGRES_DB" <<-'EOSQL'
				CREATE DATABASE :"db" ;
			EOSQL
			echo
		fi
		psql+=(--dbname "$POSTGRES_DB")

		for f in /docker-entrypoint-initdb.d/*; do
			case "$f" in
				*.sh)
					if [ -x "$f" ]; then
						echo "$0: running $f"; "$f"
					else
						echo "$0: sourcing $f"; . "$f"
					fi
					;;
				*.sql) echo "$0: running $f"; "${psql[@]}" -f "$f"; echo ;;
				*.sql.gz) echo "$0: running $f"; gunzip -c "$f" | "${psql[@]}"; echo ;;
				*) [ -e "$f" ] && echo "$0: ignoring $f" ;;
			esac
		done

		PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" -m fast -w stop
	fi
	sync "$PGDATA"
	rm -f "$initialising"
	unset PGPASSWORD
	echo
	echo 'PostgreSQL init process complete; ready for start up.'
	echo
fi

exec "$@"
