# Developer entry points. `make run` serves the API on 127.0.0.1:8000 backed by
# DynamoDB Local; `make test` installs everything and runs the checks and tests.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000

include $(wildcard mk/*.mk)
