#!/usr/bin/env bash
# The baseline of the four-service benchmark, in the style of the seed's provision.sh:
# start a service, wait until it is ready, set up its app identity, then the next one.
# Same images and the same setup as the plugins do; readiness polled every 100 ms
# (faster than the seed's sleeps, so the baseline is not handicapped). The servers run
# with their images' defaults, as the seed runs them: the RabbitMQ plugin's boot
# settings (plugins/rabbitmq: busy-wait, preload.erl) are part of what A measures.
# usage: sequential.sh NAME — containers NAME-*, all labelled provisioner.project=NAME.
set -euo pipefail
name=$1
label="provisioner.project=$name"
password=BaselinePassword0123456789abcdef
network=$name-net

# wait_for CONTAINER COMMAND...: poll COMMAND until it succeeds; give up if the
# container stopped.
wait_for() {
  local container=$1
  shift
  until "$@" >/dev/null 2>&1; do
    if [ "$(docker inspect -f '{{.State.Running}}' "$container")" != true ]; then
      echo "$container stopped while waiting for it:" >&2
      docker logs --tail 20 "$container" >&2
      exit 1
    fi
    sleep 0.1
  done
}

docker network create --label "$label" "$network" >/dev/null

# PostgreSQL: an app role owning its database.
docker run -d --name "$name-db" --label "$label" --network "$network" -p 127.0.0.1::5432 \
  -e POSTGRES_PASSWORD="$password" provisioner-offline/postgres:15 >/dev/null
wait_for "$name-db" docker exec -u postgres "$name-db" pg_isready -q -h 127.0.0.1
docker exec -i -u postgres "$name-db" psql -q -v ON_ERROR_STOP=1 >/dev/null <<SQL
CREATE ROLE app LOGIN PASSWORD '$password' NOSUPERUSER NOCREATEDB NOCREATEROLE;
CREATE DATABASE shop OWNER app;
SQL

# Redis: the default user off, an ACL user for the app.
docker run -d --name "$name-cache" --label "$label" --network "$network" -p 127.0.0.1::6379 \
  -e PASSWORD="$password" --user redis --entrypoint sh provisioner-offline/redis:7 \
  -c 'exec redis-server --user default off --user app on ">$PASSWORD" "~*" "&*" "+@all" -@admin -@dangerous' >/dev/null
wait_for "$name-cache" sh -c "docker exec $name-cache redis-cli --no-auth-warning --user app --pass $password ping | grep -q PONG"

# S3 (Garage): a bucket and a key allowed only on it.
config=$(mktemp)
trap 'rm -f "$config"' EXIT
cat >"$config" <<TOML
metadata_dir = "/var/lib/garage/meta"
data_dir = "/var/lib/garage/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "[::]:3901"
rpc_secret = "$(printf %s "$password" | sha256sum | cut -c1-64)"
[s3_api]
api_bind_addr = "[::]:3900"
s3_region = "garage"
TOML
docker create --name "$name-files" --label "$label" --network "$network" -p 127.0.0.1::3900 \
  provisioner-offline/garage:2.5.0 >/dev/null
docker cp "$config" "$name-files:/etc/garage.toml"
docker start "$name-files" >/dev/null
wait_for "$name-files" docker exec "$name-files" /garage status
node=$(docker exec "$name-files" /garage node id -q | cut -d@ -f1)
docker exec "$name-files" /garage layout assign -z dc1 -c 1G "$node" >/dev/null
docker exec "$name-files" /garage layout apply --version 1 >/dev/null
docker exec "$name-files" /garage bucket create attachments >/dev/null
docker exec "$name-files" /garage key create app >/dev/null
docker exec "$name-files" /garage bucket allow --read --write attachments --key app >/dev/null

# RabbitMQ: a vhost and a user limited to it.
docker run -d --name "$name-queue" --label "$label" --network "$network" -p 127.0.0.1::5672 \
  -e RABBITMQ_DEFAULT_USER=admin -e RABBITMQ_DEFAULT_PASS="$password" provisioner-offline/rabbitmq:3 >/dev/null
# The CLI runs as rabbitmq: run as root it would create the Erlang cookie first, owned
# by root, and the server could not read it.
wait_for "$name-queue" docker exec -u rabbitmq "$name-queue" rabbitmq-diagnostics -q check_running
docker exec -u rabbitmq "$name-queue" rabbitmqctl -q add_vhost shop >/dev/null
docker exec -u rabbitmq "$name-queue" rabbitmqctl -q add_user app "$password" >/dev/null
docker exec -u rabbitmq "$name-queue" rabbitmqctl -q set_permissions -p shop app ".*" ".*" ".*" >/dev/null
