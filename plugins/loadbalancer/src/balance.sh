#!/bin/sh
# The load balancer's entrypoint: nginx, plus a loop that keeps nginx's upstream list
# equal to what the project network's DNS answers for $UPSTREAM_HOST. The replicas of
# a service all carry its name, so instances that start are added and instances that
# stop are dropped within half a second, each change applied with a graceful
# `nginx -s reload` (requests in flight finish on the old workers).
set -u
conf=/etc/nginx/conf.d/upstream.conf

resolve() {
	getent ahostsv4 "$UPSTREAM_HOST" 2>/dev/null | awk '{ print $1 }' | sort -u | tr '\n' ' '
}

render() {
	{
		echo "upstream app {"
		for ip in $1; do
			# A refused or failed connection benches the instance for 2 s; the request
			# goes on to the next one (proxy_next_upstream in default.conf).
			echo "    server $ip:$UPSTREAM_PORT max_fails=1 fail_timeout=2s;"
		done
		# nginx needs one server; with no instance yet clients get 502.
		[ -n "$1" ] || echo "    server 127.0.0.1:9 down;"
		echo "}"
	} >"$conf.tmp" && mv "$conf.tmp" "$conf"
}

current=$(resolve)
render "$current"
echo "balance: $UPSTREAM_HOST:$UPSTREAM_PORT is ${current:-nothing yet}"
nginx -g 'daemon off;' &
nginx_pid=$!
trap 'kill -QUIT "$nginx_pid" 2>/dev/null; wait "$nginx_pid"; exit 0' TERM INT QUIT

while kill -0 "$nginx_pid" 2>/dev/null; do
	# In the background so a TERM is handled at once, not after the sleep.
	sleep 0.5 &
	wait $!
	next=$(resolve)
	if [ "$next" != "$current" ]; then
		render "$next"
		if nginx -t -q; then
			nginx -s reload
			echo "balance: $UPSTREAM_HOST:$UPSTREAM_PORT is now ${next:-nothing}"
		fi
		current=$next
	fi
done
wait "$nginx_pid"
