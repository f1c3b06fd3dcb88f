# The two commands of the README: `make run` and `make test`. Everything else supports them.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.installed-$(shell sha256sum requirements.txt | cut -c1-16)
HOST ?= 127.0.0.1
PORT ?= 8080
PYTEST_ARGS ?=

.PHONY: run test test-cluster lint pytest services services-down services-status venv bench drills drills-cluster node-deps browser compose-plugin nginx prod prod-cluster prod-down prod-status

$(VENV_STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

venv: $(VENV_STAMP)

## Run the whole system on the embedded defaults (SQLite, in-process bus, read store and Redis).
run: venv
	$(PY) manage.py migrate --noinput
	$(PY) manage.py generate_keys --if-missing
	$(PY) manage.py seed
	@echo "chatproject is serving at http://localhost:$(PORT)/  (log in as user1 / 123)"
	$(PY) manage.py runserver --insecure $(HOST):$(PORT)

## Provision and start the real services, then lint, type-check and run the full suite against them.
test: venv node-deps browser services compose-plugin nginx lint pytest

# The reference browser client's libraries (sockjs-client, stompjs 2.3.3), for the realtime tests.
node-deps: realtime/tests/node/node_modules/.installed

realtime/tests/node/node_modules/.installed: realtime/tests/node/package-lock.json
	npm ci --prefix realtime/tests/node --no-audit --no-fund --omit=optional
	@touch $@

# Debian's chromium for the browser client's end-to-end tests (installed only when missing;
# Playwright drives it and never downloads a browser of its own).
browser:
	scripts/browser install

services:
	scripts/services up

# `docker compose` built from source into .local/docker (DOCKER_CONFIG), to validate docker-compose.yml.
compose-plugin:
	scripts/docker-compose-plugin >/dev/null

# nginx from Debian's package, for the local production-like run and its tests.
nginx:
	scripts/prod install

## The local production-like run: nginx on :8080 (CHAT_PROD_PORT) in front of two web processes,
## the relay, the projector and the pusher, on the real services.
prod: venv
	scripts/prod up

## The clustered topology on this machine: three Kafka brokers, a Redis Cluster of six nodes, and
## nginx in front of two api processes, three web processes, two relays, two projectors and two
## pushers (docs/cluster.md). prod-down and prod-status act on it as on any run.
PROD_CLUSTER_SHAPE := CHAT_PROD_APIS=2 CHAT_PROD_WEBS=3 CHAT_PROD_RELAYS=2 CHAT_PROD_PROJECTORS=2 CHAT_PROD_PUSHERS=2
prod-cluster: venv
	scripts/services up --cluster
	$(PROD_CLUSTER_SHAPE) scripts/prod up

## The acceptance part of the suite (REST, STOMP, recovery, the browser client through nginx)
## against the clustered engines, started in a home of their own (.local/cluster).
CLUSTER_HOME := CHAT_SERVICES_HOME=$(CURDIR)/.local/cluster CHAT_TOPOLOGY=cluster CHAT_PG_PORT=15532 CHAT_MONGO_PORT=17117
ACCEPTANCE := accounts customers chat_command chat_query webui realtime/tests/test_realtime.py \
	realtime/tests/test_recovery.py realtime/tests/test_membership.py realtime/tests/test_revocation.py \
	realtime/tests/test_sockjs_browser.py deploy/tests/test_prod_run.py
test-cluster: venv node-deps browser nginx
	$(CLUSTER_HOME) scripts/services up
	export $(CLUSTER_HOME); eval "$$(scripts/services env)"; $(PY) -m pytest $(ACCEPTANCE) $(PYTEST_ARGS)

prod-down:
	scripts/prod down

prod-status:
	scripts/prod status

services-down:
	scripts/services down

services-status:
	scripts/services status

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports
	$(PY) manage.py makemigrations --check --dry-run

# pytest exits 5 when it collected nothing: that is a failure here, never a silent pass.
pytest: venv
	eval "$$(scripts/services env)"; \
	rc=0; $(PY) -m pytest $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest ran no tests: failing." >&2; exit 1; fi; \
	exit $$rc

## Benchmarks against the real services; one table of every figure against its target at the end,
## each figure the median (and spread) of BENCH_RUNS runs (the sustained one runs once).
BENCHES := command_write read_path realtime peer pipeline sustained
BENCH_RUNS ?= 3
SUSTAINED_ARGS ?=
PIPELINE_ARGS ?=
bench: venv services
	eval "$$(scripts/services env)"; failed=""; \
	for bench in $(BENCHES); do rm -f .local/bench/$$bench.json .local/bench/$$bench.run*.json; done; \
	for bench in $(BENCHES); do \
		args=""; runs=$(BENCH_RUNS); if [ $$bench = sustained ]; then args="$(SUSTAINED_ARGS)"; runs=1; fi; \
		if [ $$bench = pipeline ]; then args="$(PIPELINE_ARGS)"; fi; \
		for run in $$(seq $$runs); do \
			$(PY) benchmarks/$$bench.py $$args || { failed="$$failed $$bench"; break; }; \
			mv .local/bench/$$bench.json .local/bench/$$bench.run$$run.json; \
		done; \
	done; \
	$(PY) benchmarks/summary.py; \
	if [ -n "$$failed" ]; then echo "benchmarks that failed to run:$$failed" >&2; exit 1; fi

## Fault drills under load: kill and restart each part in turn, then check nothing was lost.
## They run on a private instance of the services of their own (benchmarks/instance.py).
DRILLS_ARGS ?=
drills: venv
	$(PY) benchmarks/drills.py $(DRILLS_ARGS)

## The same under the clustered topology: kill a Kafka broker, a Redis primary, a projector and a
## pusher, a web process (benchmarks/drills_cluster.py), on a private clustered instance.
drills-cluster: venv
	$(PY) benchmarks/drills_cluster.py $(DRILLS_ARGS)
