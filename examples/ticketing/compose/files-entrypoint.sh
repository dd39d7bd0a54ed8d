#!/usr/bin/env bash
# The `files` service of docker-stack.yml: Garage's server, and once it answers, the
# one-shot init of garage-init.sh (Swarm cannot run that beside the server in its
# network namespace, as the compose file does). The healthcheck waits for the marker.
set -euo pipefail
rm -f /tmp/files-init-done
/garage server &
server=$!
trap 'kill -TERM $server' TERM INT
until /garage status >/dev/null 2>&1; do
  kill -0 $server 2>/dev/null || exit 1
  sleep 0.2
done
bash /garage-init.sh
touch /tmp/files-init-done
wait $server
