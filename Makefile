# Every target installs what it needs first, so a fresh clone with Python 3.11+ and make is enough.
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .local/tools
UV := $(TOOLS)/bin/uv
VENV := .venv
export UV_PYTHON_DOWNLOADS := never

.PHONY: install demo dev test bench clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.installed: $(UV) pyproject.toml uv.lock
	$(UV) sync --locked --python $(PYTHON)
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/python -m crm_assets.local demo

dev: install
	$(VENV)/bin/python -m crm_assets.local dev

test: install
	$(VENV)/bin/pytest

bench: install
	$(VENV)/bin/python -m bench.run

clean:
	rm -rf .local $(VENV)
