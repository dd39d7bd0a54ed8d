#!/usr/bin/env bash
# The one-shot `files-init` service: in the network namespace of `files` (so the CLI
# reaches the server at 127.0.0.1:3901) and with its metadata volume read-only (where
# the CLI finds the node's id), it does what the provisioner's s3 plugin does, each
# step idempotent: give the node a storage role, create the bucket, import the app's
# access key (through the JSON API on stdin: the secret is on no command line) and
# allow it to read and write that bucket only.
set -euo pipefail
: "${S3_BUCKET:?}" "${S3_ACCESS_KEY_ID:?}" "${S3_SECRET_ACCESS_KEY:?}"
export RUST_LOG=garage=warn
garage=/garage

node=$($garage node id -q | cut -d@ -f1)
if ! $garage layout show | grep -q "${node:0:16}"; then
  $garage layout assign -z dc1 -c 1G "$node" >/dev/null
  version=$(( $($garage layout show | sed -n 's/^Current cluster layout version: //p') + 1 ))
  $garage layout apply --version "$version" >/dev/null
fi
$garage bucket info "$S3_BUCKET" >/dev/null 2>&1 || $garage bucket create "$S3_BUCKET" >/dev/null
key=$(printf '{"accessKeyId":"%s","secretAccessKey":"%s","name":"app"}' "$S3_ACCESS_KEY_ID" "$S3_SECRET_ACCESS_KEY")
if ! out=$($garage json-api ImportKey - <<<"$key" 2>&1); then
  grep -q "already exists" <<<"$out" || { echo "$out" >&2; exit 1; }
fi
$garage bucket allow --read --write "$S3_BUCKET" --key "$S3_ACCESS_KEY_ID" >/dev/null
echo "files-init: bucket $S3_BUCKET ready for the app's key"
