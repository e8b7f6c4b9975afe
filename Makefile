# MAE — the two commands are `make up` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
REPLICAS ?= 1
# The benchmark scripts (bench/common.py, bench/floor_services.py and bench/scale_*.py are their helpers).
# `make bench` runs scale at a tenth of its size (BENCH_SCALE_ARGS: 1,000 apps, a burst of 50 deploys,
# ~4 minutes); `make bench-scale` runs it at full size (10,000 apps, 5,000,000 log lines, 200 deploys).
BENCHES ?= rpc_floor api_read sandbox fanout report_traffic deploy_latency status_ingest log_ingest log_stream footprint template_render scale
BENCH_SCALE_ARGS ?= --quick
PYTHON ?= python3

.PHONY: install up down status admin-token migrate test test-unit test-faults test-realkube kube-bin bench bench-scale infra-check infra-start clean browser screenshots oidc-idp a11y

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip 'setuptools<82' wheel
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

infra-check:
	@scripts/infra.sh check

infra-start:
	@scripts/infra.sh start

migrate: install infra-start
	$(PY) -m shared.migrate

up: install infra-start migrate
	$(PY) -m scripts.stack up --replicas $(REPLICAS)

down:
	@if [ -x $(PY) ]; then $(PY) -m scripts.stack down; else echo "nothing to stop"; fi

admin-token: install
	$(PY) -m scripts.stack admin-token

status: install
	$(PY) -m scripts.stack status

# The suite in two parts at once (TEST_SHARDS=1: one process), scripts/test-shards.sh.
TEST_SHARDS ?= 2
test: install infra-start browser kube-bin oidc-idp a11y
	PY=$(PY) TEST_SHARDS=$(TEST_SHARDS) scripts/test-shards.sh $(PYTEST_ARGS)

# The OpenID Provider tests/e2e/test_identity.py logs in through: panva's oidc-provider
# from the npm registry (not MAE's code), as its lock file pins it.
OIDC_IDP := tests/e2e/oidc_idp
oidc-idp: $(OIDC_IDP)/node_modules/.installed

$(OIDC_IDP)/node_modules/.installed: $(OIDC_IDP)/package.json $(OIDC_IDP)/package-lock.json
	@command -v npm >/dev/null || (apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null)
	cd $(OIDC_IDP) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# axe-core, as tests/e2e/a11y's lock file pins it, for tests/e2e/test_console_a11y.py
# (injected into each console page from node_modules; never from a CDN).
A11Y := tests/e2e/a11y
a11y: $(A11Y)/node_modules/.installed

$(A11Y)/node_modules/.installed: $(A11Y)/package.json $(A11Y)/package-lock.json
	@command -v npm >/dev/null || (apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null)
	cd $(A11Y) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The real Kubernetes control plane the tests also run against (tests/realkube/): KUBE_BIN
# if set, else ../shared/kube/kube-bin.tar.xz unpacked into .run/kube-bin/, else envtest's
# download; if none works this fails naming what to install — the tier is never skipped.
kube-bin:
	@scripts/kube-bin.sh >/dev/null

# The cluster-facing suites alone, each against the sandbox and the real API server.
test-realkube: install infra-start kube-bin
	$(PY) -m pytest tests/realkube tests/sandbox tests/integration/test_mke.py tests/e2e/test_deploy.py $(PYTEST_ARGS)

test-unit: install
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

# The fault suite: a wave of deploys on 2 replicas per service while replicas are killed
# and the suite's own RabbitMQ, MariaDB and Redis restart (tests/faults/test_wave.py, part
# of `make test` too), then the same wave on a 3-node RabbitMQ cluster and a Redis behind
# three sentinels, losing a broker node for good and the Redis primary (cluster_wave.py,
# here only); prints what converged. Needs rabbitmq-server, mariadbd and redis-server.
test-faults: install
	$(PY) -m pytest $(wildcard tests/faults/test_*.py) tests/faults/cluster_wave.py $(PYTEST_ARGS)

bench: install infra-start
	@command -v wrk >/dev/null || (apt-get install -y -q wrk >/dev/null 2>&1 || echo "wrk not installable; benches fall back to a Python load generator")
	@set -e; for b in $(BENCHES); do echo "== bench/$$b.py"; \
		$(PY) bench/$$b.py $$(if [ $$b = scale ]; then echo "$(BENCH_SCALE_ARGS)"; fi); done

bench-scale: install infra-start
	$(PY) bench/scale.py

# Debian's headless Chromium for the console's browser tests (Playwright drives it;
# it never downloads a browser of its own), and a CJK font so Chinese pages render.
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	@fc-list :lang=zh 2>/dev/null | grep -q . || apt-get install -y -qq fonts-wqy-microhei >/dev/null

# PNGs of the console's main pages in English and Chinese, under docs/screenshots/.
screenshots: install infra-start browser
	MAE_SCREENSHOTS=docs/screenshots $(PY) -m pytest tests/e2e/screenshots.py -q -p no:cacheprovider $(PYTEST_ARGS)

clean: down
	rm -rf .run
