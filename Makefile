SHELL := /bin/bash
# Two entry points: `make run` and `make test`. Both create .venv on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
REPORTS := reports

.PHONY: run test lint fuzz bench bench-spark clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The editable install leaves the sources uncompiled, and with PYTHONDONTWRITEBYTECODE set (as on
# some CI machines) every start compiled them again (+0.15 s): they are compiled once here.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	$(BIN)/python -m compileall -q validator >/dev/null
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/python -m compileall -q validator >/dev/null
	touch $@ $(VENV)/.installed

# Validate the bundled example payloads and write every report format of validator/report/ to
# reports/ (report.json, operation-outcome.json, junit.xml, report.html, report.sarif,
# gl-code-quality-report.json), and the
# console summary to summary.txt. Some examples are non-conformant on purpose: exit status 1
# (findings) is expected here, exit status 2 (usage error, broken rule pack) is not.
run: $(VENV)/.installed
	@mkdir -p $(REPORTS)
	$(BIN)/imaging-validator validate examples/payloads --reports-dir $(REPORTS) | tee $(REPORTS)/summary.txt; \
	status=$${PIPESTATUS[0]}; \
	if [ $$status -gt 1 ]; then exit $$status; fi; \
	echo "Reports written to $(REPORTS)/ (exit status $$status: 1 means findings in the examples, as intended)"

# The HTML report is tested in a real headless browser: Debian's chromium, driven by Playwright.
CHROMIUM := /usr/bin/chromium

$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "The HTML report test needs Debian's chromium package: sudo apt-get install chromium"; exit 1; \
	fi

# The --dicomweb tests run against a real PACS: Debian's Orthanc and its DICOMweb plugin, started
# by the tests on a free 127.0.0.1 port with their own configuration. The package's own service is
# kept from starting while it installs (a policy-rc.d that refuses, when the system has none).
ORTHANC_DICOMWEB := /usr/share/orthanc/plugins/libOrthancDicomWeb.so

$(ORTHANC_DICOMWEB):
	@if [ "$$(id -u)" = 0 ]; then \
		added=; if [ ! -e /usr/sbin/policy-rc.d ]; then \
			printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && added=1; fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			orthanc orthanc-dicomweb >/dev/null; status=$$?; \
		if [ -n "$$added" ]; then rm -f /usr/sbin/policy-rc.d; fi; exit $$status; \
	else \
		echo "The DICOMweb tests need Debian's orthanc and orthanc-dicomweb packages: sudo apt-get install orthanc orthanc-dicomweb"; exit 1; \
	fi

# The probe's tests search a real Medplum FHIR router (pinned in tests/servers/medplum).
MEDPLUM := tests/servers/medplum/node_modules/.package-lock.json

$(MEDPLUM): tests/servers/medplum/package-lock.json
	cd tests/servers/medplum && npm ci --no-audit --no-fund --loglevel=error

# The Spark tests (tests/test_spark.py) run PySpark, which needs a Java 17 runtime.
JAVA := /usr/bin/java

$(JAVA):
	@if [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null; \
	else \
		echo "The Spark tests need Java 17: sudo apt-get install openjdk-17-jre-headless"; exit 1; \
	fi

test: $(VENV)/.installed-test $(CHROMIUM) $(ORTHANC_DICOMWEB) $(MEDPLUM) $(JAVA)
	$(BIN)/ruff check validator tests fuzz bench
	$(BIN)/python -m pytest

# Coverage-guided fuzzing of reading and validating payload files, for a bounded time
# (make test runs a fixed budget of it too).
FUZZ_SECONDS ?= 120
fuzz: $(VENV)/.installed-test
	$(BIN)/python fuzz/fuzz_loader.py -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=reports/

# Speed against peer validators on real payloads, and the speed targets, MET or NOT MET (not part
# of make test; ~15 minutes on 2 cores). The node peers (FHIR.js, Medplum) go into a throwaway
# folder; fhirkit-rs is not in the bench extra's pins yet, so it is installed here, and when it
# cannot be the benchmark prints why instead of timing it. Exit status 0 whatever the targets say.
NDJSON ?= 100000
ROUNDS ?= 5
bench: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/pip install --quiet fhirkit-rs || echo "fhirkit-rs could not be installed: the benchmark reports it as not available"
	$(BIN)/python bench/benchmark.py --ndjson $(NDJSON) --rounds $(ROUNDS)

# Spark (local[2]) against --jobs 2 on the same NDJSON file (needs Java 17; not part of make test).
bench-spark: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[spark]'
	$(BIN)/python bench/spark_vs_jobs.py

lint: $(VENV)/.installed-test
	$(BIN)/ruff check validator tests

clean:
	rm -rf $(VENV) $(REPORTS)/*.json $(REPORTS)/*.txt $(REPORTS)/*.xml $(REPORTS)/*.html $(REPORTS)/*.sarif
