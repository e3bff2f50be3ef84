# End-to-end rehearsal against LocalStack's DynamoDB (see docs/localstack.md).
# Uses VENV, PY and the install target of the main Makefile.

LOCALSTACK_PORT ?= 4566
# auto: Docker when `docker info` succeeds, else localstack-core on the host.
LOCALSTACK_MODE ?= auto
# 1: `make e2e` exits 0, printing the reason, when LocalStack cannot start.
E2E_OPTIONAL ?=

LOCALSTACK_OPTIONS = --port $(LOCALSTACK_PORT) --mode $(LOCALSTACK_MODE)

.PHONY: e2e localstack-up localstack-down

e2e: install ## Run the HTTP tests against LocalStack's DynamoDB, then stop LocalStack
	PY="$(PY)" LOCALSTACK_PORT="$(LOCALSTACK_PORT)" LOCALSTACK_MODE="$(LOCALSTACK_MODE)" \
		E2E_OPTIONAL="$(E2E_OPTIONAL)" scripts/e2e.sh

localstack-up: install ## Start LocalStack (DynamoDB) on 127.0.0.1:$(LOCALSTACK_PORT)
	$(PY) -m localdev.localstack start $(LOCALSTACK_OPTIONS)

localstack-down: ## Stop the LocalStack that localstack-up started
	$(PY) -m localdev.localstack stop $(LOCALSTACK_OPTIONS)
