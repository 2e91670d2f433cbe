# The two commands for a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LISTEN ?= tcp:4000
IRC ?= tcp:6667
WEB ?= tcp:8080
DATA ?= var

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Stamps: reinstall only when the packaging changes.
$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install --quiet --config-settings editable_mode=compat -e '.[tui]'
	touch $@

$(VENV)/.installed-test: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install --quiet --config-settings editable_mode=compat -e '.[test,tui]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	@echo "chatd: line clients (nc, telnet, chatd-client) on $(LISTEN)," \
	  "IRC clients (irssi, WeeChat, HexChat) on $(IRC); data in $(DATA)/"
	@echo "chatd: in a browser, open http://localhost:$(word 2,$(subst :, ,$(WEB)))/"
	$(BIN)/twistd --pidfile= -n chatd --listen $(LISTEN) --irc $(IRC) --web $(WEB) --data-dir $(DATA)

test: $(VENV)/.installed-test
	tests/ensure-tools.sh tmux irssi weechat openssl systemd-analyze:systemd systemd-socket-activate:systemd \
	  chromium chromedriver:chromium-driver \
	  redis-server:redis-server  # browser tests (test_web_browser.py); cluster tests (test_cluster*.py)
	@# The slow tests mostly wait (a client pacing itself at 2 lines a second):
	@# they run beside the rest, so the suite takes as long as its longer half.
	$(BIN)/python -m pytest -q -p no:cacheprovider -m slow tests > .slow-tests.log 2>&1 & slow=$$!; \
	$(BIN)/python -m pytest -q -m "not slow" tests; rest=$$?; \
	wait $$slow; slow=$$?; echo "== the slow tests:"; cat .slow-tests.log; rm -f .slow-tests.log; \
	[ $$rest -eq 0 ] && [ $$slow -eq 0 ]

# The benchmark against ngircd, and of a cluster (docs/performance.md,
# docs/scaling.md); BENCH_ARGS=--help.
bench: $(VENV)/.installed-test
	bench/ensure-ngircd.sh
	tests/ensure-tools.sh redis-server:redis-server  # the cluster scenarios
	$(BIN)/python bench/bench.py $(BENCH_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) build *.egg-info _trial_temp .pytest_cache tests.*/
