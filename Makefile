# nbversion: `make demo` runs the quickstart end to end, `make test` runs the whole suite.
SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed
EXTRAS ?= yolo,lab,test,remotes,export,ray
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1
export DVC_NO_ANALYTICS := 1
# notebooks run `!nbversion ...`: the kernel must find the venv's console script
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: install demo test test-fast bench bench-large clean wheel versions

install: $(STAMP)

# Re-runs only when pyproject.toml or the lock changes, so a second `make test` starts in seconds.
# requirements-lock.txt pins every version tested (`pip freeze`): no resolver backtracking on CI.
$(STAMP): pyproject.toml requirements-lock.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch 2.14.1 / torchvision 0.29.1 are the wheels this platform serves from local disk
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -c requirements-lock.txt -e '.[$(EXTRAS)]'
	touch $(STAMP)

# The JupyterLab sidebar, built from the committed lock file (needs node + npm).
LABEXT := nbversion/labextension/package.json
$(LABEXT): $(STAMP) labextension/package-lock.json labextension/package.json $(wildcard labextension/src/*.ts) $(wildcard labextension/style/*)
	cd labextension && npm ci --no-audit --no-fund && npm run build
	touch $(LABEXT)

demo: install
	rm -rf .demo && mkdir -p .demo
	$(PY) examples/run_notebook.py examples/quickstart.ipynb .demo/quickstart.ipynb
	@echo "executed notebook: $(CURDIR)/.demo/quickstart.ipynb"

test: install $(LABEXT)
	$(VENV)/bin/pytest tests -q -p no:cacheprovider
	$(VENV)/bin/pytest --nbval-lax examples -q -p no:cacheprovider

# the wheel into dist/ (the sidebar from $(LABEXT), so the build does not run npm again)
wheel: install $(LABEXT)
	rm -rf dist && $(PY) -m pip wheel -q --no-deps . -w dist/

# the lowest and newest supported dependency versions, each in its own venv (constraints-*.txt)
versions: wheel
	PYTHON=$(PY) .ci/versions lowest
	PYTHON=$(PY) .ci/versions newest

bench: install $(LABEXT)
	$(PY) -m benchmarks

# the big sizes of issues 15 and 16 (minutes): 200,000 files and 100,000 images, 10,000 signed
# commits, push/pull of 100,000 files, REST list routes at 10,000 versions, runs and audit entries
bench-large: install
	$(PY) -m benchmarks.bench_changes --files 200000 --images 100000
	$(PY) -m benchmarks.bench_signed --commits 10000
	$(PY) -m benchmarks.bench_remotes --small 100000 --versions 100
	$(PY) -m benchmarks.bench_server --versions 10000 --runs 10000 --audit 10000 --no-browser

clean:
	rm -rf .demo test-artifacts benchmarks/.work dist .venv-lowest .venv-newest .venv-wheel
