# The two commands a newcomer needs: `make demo` and `make test`. Both install what they need.
PYTHON ?= python3
CLUSTER = $(PYTHON) tests/cluster/devcluster.py
PYTEST_ARGS ?=

.PHONY: setup deps cluster-up cluster-down images demo test lint unit

deps:  ## Debian packages and the Python package with its dev extras
	bash tests/setup-deps.sh

setup: deps cluster-up  ## everything the full test suite needs

cluster-up:  ## build (cached) and start the local single-node cluster, or reuse the current context
	$(CLUSTER) up $(if $(KDP_USE_CURRENT_CONTEXT),--use-current-context,)

cluster-down:
	$(CLUSTER) down

images:
	$(CLUSTER) build-images

demo: deps cluster-up  ## install the chart, apply an example pipeline, watch its run finish
	eval "$$($(CLUSTER) env $(if $(KDP_USE_CURRENT_CONTEXT),--use-current-context,))" && $(PYTHON) -m datapipeline.cli.main demo

lint:
	ruff check operator tests benchmarks
	mypy

unit:  ## the pure tier: seconds, no cluster, no servers
	$(PYTHON) -m pytest -m "not cluster and not servers and not e2e" -q $(PYTEST_ARGS)

test: setup lint  ## the whole suite: unit, servers, cluster and e2e tiers
	eval "$$($(CLUSTER) env $(if $(KDP_USE_CURRENT_CONTEXT),--use-current-context,))" && $(PYTHON) -m pytest $(PYTEST_ARGS)
