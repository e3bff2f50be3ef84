#!/usr/bin/env bash
# Run tests/localstack and the HTTP suite in tests/integration against LocalStack's DynamoDB.
# The script starts LocalStack, runs pytest with PIX_E2E_DYNAMODB_ENDPOINT pointing at it,
# and stops LocalStack whatever pytest returned, on Ctrl-C too. `make e2e` calls it.
# Environment:
#   PY               Python with the project's dev requirements (required)
#   LOCALSTACK_PORT  gateway port on 127.0.0.1 (default 4566)
#   LOCALSTACK_MODE  auto, docker or host (default auto)
#   E2E_OPTIONAL     1: exit 0 with the reason when LocalStack cannot start
# Extra arguments go to pytest.
set -uo pipefail

: "${PY:?set PY to the Python of the project virtualenv}"
port="${LOCALSTACK_PORT:-4566}"
localstack=("$PY" -m localdev.localstack)
options=(--port "$port" --mode "${LOCALSTACK_MODE:-auto}")

if ! "${localstack[@]}" start "${options[@]}"; then
  if [ "${E2E_OPTIONAL:-}" = 1 ]; then
    echo "e2e: skipped because LocalStack did not start (reason above) and E2E_OPTIONAL=1"
    exit 0
  fi
  echo "e2e: failed because LocalStack did not start (reason above);" \
    "set E2E_OPTIONAL=1 to skip instead" >&2
  exit 1
fi

stop_localstack() {
  local status=$?
  "${localstack[@]}" stop "${options[@]}" || status=1
  exit "$status"
}
trap stop_localstack EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PIX_E2E_DYNAMODB_ENDPOINT="http://127.0.0.1:$port" \
  "$PY" -m pytest tests/localstack tests/integration -m "not slow" -q "$@"
