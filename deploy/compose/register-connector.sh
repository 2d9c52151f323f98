#!/bin/sh
# One-shot: create or update the Debezium MongoDB source connector through the Connect REST API.
# PUT /connectors/<name>/config is idempotent: it creates the connector or replaces its config.
set -eu

CONNECT_URL="${CONNECT_URL:-http://connect:8083}"
CONFIG_FILE="${CONFIG_FILE:-/config/mongodb-source.json}"
NAME="${CONNECTOR_NAME:-mongodb-source}"

i=0
until curl -fsS "$CONNECT_URL/connector-plugins" | grep -q 'MongoDbConnector'; do
  i=$((i + 1))
  if [ "$i" -ge 60 ]; then
    echo "connector-init: Kafka Connect at $CONNECT_URL has no MongoDbConnector plugin" >&2
    exit 1
  fi
  sleep 2
done

curl -fsS -X PUT -H 'Content-Type: application/json' \
  --data @"$CONFIG_FILE" "$CONNECT_URL/connectors/$NAME/config"
echo

i=0
# The connector and its task 0 must both be RUNNING (the connector alone can be RUNNING
# while its task FAILED, e.g. when MongoDB is not a replica set).
until curl -fsS "$CONNECT_URL/connectors/$NAME/status" | grep -q '"tasks":\[{"id":0,"state":"RUNNING"'; do
  i=$((i + 1))
  if [ "$i" -ge 60 ]; then
    echo "connector-init: connector $NAME is not RUNNING:" >&2
    curl -sS "$CONNECT_URL/connectors/$NAME/status" >&2 || true
    exit 1
  fi
  sleep 2
done
echo "connector-init: $NAME is RUNNING"
