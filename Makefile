.PHONY: setup test lint format proto config-docs run start stop status restart scale bench bench-reconcile reliability docker-test cluster-start cluster-stop cluster-status test-cluster

PY := .venv/bin/python
# The stack's parameters (WEB_PROCS, APP_PROCS, SHILLINGS_HTTP_HOST, SHILLINGS_HTTP_PORT,
# SHILLINGS_VAR, ...) are read from the environment by scripts/stack.py (shillings_stack/config.py); make passes both
# `VAR=value make start` and `make start VAR=value` through. Defaults: see README.
STACK := $(PY) scripts/stack.py

setup:
	./scripts/setup.sh

test: setup
	$(PY) -m pytest -q --ignore=tests/cluster

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy shillings_proto shillings_app shillings_web shillings_stack

format: setup
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

proto: setup
	$(PY) -m grpc_tools.protoc -Iproto --python_out=shillings_proto --pyi_out=shillings_proto proto/shillings.proto

# The README's configuration tables, generated from the settings classes.
config-docs: setup
	$(PY) -m shillings_proto.configdoc README.md

# The whole stack in the foreground, ready at http://127.0.0.1:8080; Ctrl-C stops all of it.
run: setup
	$(STACK) run

# The same in the background; returns once /healthz answers 200.
start: setup
	$(STACK) start

# Stops every program (mariadbd and nginx workers included) and supervisord itself.
stop:
	@if [ -x $(PY) ]; then $(STACK) stop; else echo "no .venv: nothing to stop"; fi

status:
	@$(STACK) status

# Rolling restart: app servers one at a time, then web processes while nginx leaves them out,
# then the webhook delivery workers.
restart:
	$(STACK) restart

# The running stack to WEB_PROCS web and APP_PROCS app processes, while it serves:
# make scale WEB_PROCS=4 APP_PROCS=2 (an omitted count stays as it is).
scale:
	$(STACK) scale

# The benchmark (< 10 min) -> bench/RESULTS.md. Main stack shape: WEB_PROCS x APP_PROCS
# (default 2 x 1); more options in BENCH_ARGS, e.g. BENCH_ARGS="--duration 5 --scaling 1x1,4x2".
bench: setup
	./bench/run.sh --web $${WEB_PROCS:-2} --app $${APP_PROCS:-1} $(BENCH_ARGS)

# `shillings-app reconcile` on a generated ledger (a million transactions, a private MariaDB).
bench-reconcile: setup
	$(PY) -m bench.reconcile $(BENCH_ARGS)

# The fault, load and hostile-input scenarios alone (they also run in `make test`), writing
# their figures to docs/RELIABILITY.md.
reliability: setup
	SHILLINGS_RELIABILITY_REPORT=docs/RELIABILITY.md $(PY) -m pytest -q -m slow tests/reliability

# Builds the image and runs it as its users would (one container, then docker-compose.yml
# with --scale web=3): see scripts/docker_test.py. Installs Docker and starts dockerd when
# needed; builds stand-in base images when Docker Hub's are absent (scripts/standin_images.sh).
docker-test:
	./scripts/docker_test.sh

# The cluster shape on this machine (scripts/cluster.py): 3 MariaDB Galera nodes, Redis,
# 2 app servers on different nodes, web processes, nginx on http://127.0.0.1:8090.
# State in var-cluster/ (SHILLINGS_VAR); ports from SHILLINGS_CLUSTER_PORT_BASE (13300).
cluster-start: setup
	$(PY) scripts/cluster.py start

cluster-stop:
	@if [ -x $(PY) ]; then $(PY) scripts/cluster.py stop; else echo "no .venv: nothing to stop"; fi

cluster-status:
	@$(PY) scripts/cluster.py status

# The cluster tests (a few minutes: they start their own cluster, kill nodes during a storm);
# their figures (failures too) go to docs/cluster-figures.json and docs/RELIABILITY.md.
test-cluster: setup
	SHILLINGS_CLUSTER_REPORT=docs/cluster-figures.json $(PY) -m pytest -q -p no:cacheprovider \
		tests/cluster; status=$$?; $(PY) -m tests.reliability.cluster_report; exit $$status
