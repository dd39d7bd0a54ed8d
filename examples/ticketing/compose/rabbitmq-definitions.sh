#!/usr/bin/env bash
# Entrypoint wrapper of the `queue` service: writes the broker's definitions (the app's
# vhost; `admin`, an administrator; `app`, no tags, allowed on that vhost only; no
# guest) from the passwords in the environment, then runs the image's own entrypoint.
# The broker imports the file at every boot (RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS), as
# the provisioner's rabbitmq plugin has it do.
set -euo pipefail
: "${AMQP_VHOST:?}" "${AMQP_APP_PASSWORD:?}" "${AMQP_ADMIN_PASSWORD:?}"
umask 0077
cat >/var/lib/rabbitmq/definitions.json <<JSON
{
  "vhosts": [{"name": "$AMQP_VHOST"}],
  "users": [
    {"name": "admin", "password": "$AMQP_ADMIN_PASSWORD", "tags": "administrator"},
    {"name": "app", "password": "$AMQP_APP_PASSWORD", "tags": ""}
  ],
  "permissions": [
    {"user": "app", "vhost": "$AMQP_VHOST", "configure": ".*", "write": ".*", "read": ".*"},
    {"user": "admin", "vhost": "$AMQP_VHOST", "configure": ".*", "write": ".*", "read": ".*"}
  ],
  "topic_permissions": [], "parameters": [], "policies": [], "queues": [], "exchanges": [], "bindings": []
}
JSON
unset AMQP_APP_PASSWORD AMQP_ADMIN_PASSWORD
exec docker-entrypoint.sh "$@"
