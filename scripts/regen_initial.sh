#!/usr/bin/env bash
# Until the first release, each part keeps one "initial" migration: this regenerates it from
# the part's models. Usage: flock /tmp/mailshot-migrations.lock scripts/regen_initial.sh crm|esp
set -euo pipefail
part=$1
cd "$(dirname "$0")/.."
rm -f "src/mailshot/$part/migrations/versions/"*_initial.py
.venv/bin/python scripts/new_migration.py "$part" initial >/dev/null
.venv/bin/ruff format -q "src/mailshot/$part/migrations/versions/"
.venv/bin/ruff check --fix -q "src/mailshot/$part/migrations/versions/" || true
ls "src/mailshot/$part/migrations/versions/"
