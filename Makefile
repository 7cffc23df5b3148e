# reidbook — the three commands a newcomer types. Each sets up .venv first if it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.reidbook-installed
PROFILE ?= quick
DATA    ?= synth

.PHONY: setup lint test course lab bench clean readme-results claims

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[course,dev]"
	@touch $(STAMP)

setup: $(STAMP)

lint: setup
	$(BIN)/ruff check reidbook tests benchmarks scripts

test: setup lint
	REIDBOOK_QUIET=1 MPLBACKEND=Agg $(BIN)/python -m pytest -q

course: setup
	$(BIN)/reidbook course --profile $(PROFILE) --data $(DATA) --out build/course

readme-results: setup
	REIDBOOK_QUIET=1 MPLBACKEND=Agg $(BIN)/python scripts/readme_results.py --profile $(PROFILE) --data $(DATA)

# The claims ledger (assets/claims/$(PROFILE).json): every paper claim over $(SEEDS) seeds at equal budgets.
# Resumes after an interruption; JOBS=N runs N trainings side by side (cores/N threads each); a ledger made
# with other presets is refused rather than mixed: FRESH=1 replaces it.
SEEDS ?= 3
JOBS  ?= 1
claims: setup
	$(BIN)/reidbook claims --profile $(PROFILE) --seeds $(SEEDS) --jobs $(JOBS) --data $(DATA) $(if $(FRESH),--fresh,)

lab: setup
	$(BIN)/jupyter lab notebooks/

bench: setup
	@for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf build .pytest_cache
