.PHONY: setup test lint format proto

PY := .venv/bin/python

setup:
	./scripts/setup.sh

test: setup
	$(PY) -m pytest -q

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

format: setup
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

proto: setup
	$(PY) -m grpc_tools.protoc -Iproto --python_out=shillings_proto --pyi_out=shillings_proto proto/shillings.proto
