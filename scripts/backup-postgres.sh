#!/usr/bin/env bash
# Dumps OneFlow's PostgreSQL databases (auth and billing) in pg_dump's custom
# format, optionally copies the dumps to S3 or GCS, and prunes old local dumps.
#
#   scripts/backup-postgres.sh [DATABASE|URL]...
#
# Each argument is a database name (reached through the usual libpq variables
# PGHOST, PGPORT, PGUSER, PGPASSWORD or ~/.pgpass) or a postgres:// URL.
# Without arguments: oneflow_auth oneflow_billing.
#
# Environment:
#   BACKUP_DIR             where dumps are written (default ./backups)
#   BACKUP_RETENTION_DAYS  local dumps older than this are deleted (default 14; 0 keeps all)
#   BACKUP_S3_URI          e.g. s3://bucket/oneflow/postgres: upload with `aws s3 cp`
#   BACKUP_GCS_URI         e.g. gs://bucket/oneflow/postgres: upload with `gsutil cp`
#
# Output: <BACKUP_DIR>/<database>-<UTC time>.dump and a .sha256 beside it; the
# last line printed for each database is the dump's path. URLs (which may hold
# a password) are never printed. Remote retention is the bucket's lifecycle
# rule, not this script. Procedure and RPO/RTO: docs/operations/backup-restore.md.
set -euo pipefail

BACKUP_DIR=${BACKUP_DIR:-./backups}
BACKUP_RETENTION_DAYS=${BACKUP_RETENTION_DAYS:-14}
BACKUP_S3_URI=${BACKUP_S3_URI:-}
BACKUP_GCS_URI=${BACKUP_GCS_URI:-}

log() { printf '%s backup: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v pg_dump >/dev/null || die "pg_dump not found (install the PostgreSQL client, same major version as the server or newer)"
command -v pg_restore >/dev/null || die "pg_restore not found"
[[ $BACKUP_RETENTION_DAYS =~ ^[0-9]+$ ]] || die "BACKUP_RETENTION_DAYS must be a whole number of days"
if [[ -n $BACKUP_S3_URI ]]; then
  [[ $BACKUP_S3_URI == s3://* ]] || die "BACKUP_S3_URI must start with s3://"
  command -v aws >/dev/null || die "BACKUP_S3_URI is set but the aws CLI is not installed"
fi
if [[ -n $BACKUP_GCS_URI ]]; then
  [[ $BACKUP_GCS_URI == gs://* ]] || die "BACKUP_GCS_URI must start with gs://"
  command -v gsutil >/dev/null || die "BACKUP_GCS_URI is set but gsutil is not installed"
fi

targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(oneflow_auth oneflow_billing)

mkdir -p "$BACKUP_DIR"
umask 077 # dumps hold password hashes, key hashes and the ledger

# The database name of a target, for file names and logs (never the URL).
db_name() {
  local target=$1
  if [[ $target == postgres://* || $target == postgresql://* ]]; then
    target=${target%%\?*}
    target=${target##*/}
  fi
  [[ $target =~ ^[A-Za-z0-9_.-]+$ ]] || die "cannot read a database name from a target (expected a name or postgres://…/name)"
  printf '%s' "$target"
}

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

stamp=$(date -u +%Y%m%dT%H%M%SZ)
failed=0
for target in "${targets[@]}"; do
  name=$(db_name "$target")
  file="$BACKUP_DIR/$name-$stamp.dump"
  log "dumping $name"
  start=$(date +%s)
  # Custom format: compressed, and pg_restore can pick objects and run --clean.
  # Written under a temporary name so a failed dump never looks complete.
  if ! pg_dump --format=custom --compress=6 --no-password --dbname="$target" --file="$file.partial"; then
    log "pg_dump of $name failed"
    rm -f "$file.partial"
    failed=1
    continue
  fi
  # A dump that pg_restore cannot list is not a backup.
  if ! pg_restore --list "$file.partial" >/dev/null; then
    log "the dump of $name is unreadable"
    rm -f "$file.partial"
    failed=1
    continue
  fi
  mv "$file.partial" "$file"
  sum=$(sha256_of "$file")
  printf '%s  %s\n' "$sum" "$(basename "$file")" >"$file.sha256"
  log "$name: $(du -h "$file" | cut -f1) in $(($(date +%s) - start))s, sha256 $sum"

  if [[ -n $BACKUP_S3_URI ]]; then
    log "uploading $(basename "$file") to $BACKUP_S3_URI/"
    aws s3 cp --only-show-errors "$file" "${BACKUP_S3_URI%/}/$(basename "$file")" || { log "upload to S3 failed"; failed=1; }
    aws s3 cp --only-show-errors "$file.sha256" "${BACKUP_S3_URI%/}/$(basename "$file").sha256" || failed=1
  fi
  if [[ -n $BACKUP_GCS_URI ]]; then
    log "uploading $(basename "$file") to $BACKUP_GCS_URI/"
    gsutil -q cp "$file" "${BACKUP_GCS_URI%/}/$(basename "$file")" || { log "upload to GCS failed"; failed=1; }
    gsutil -q cp "$file.sha256" "${BACKUP_GCS_URI%/}/$(basename "$file").sha256" || failed=1
  fi
  printf '%s\n' "$file"
done

# Retention: only this script's own files, and only once this run succeeded,
# so a broken backup job never eats the last good dumps.
if [[ $failed -eq 0 && $BACKUP_RETENTION_DAYS -gt 0 ]]; then
  for target in "${targets[@]}"; do
    name=$(db_name "$target")
    while IFS= read -r old; do
      log "retention: deleting $(basename "$old")"
      rm -f "$old" "$old.sha256"
    done < <(find "$BACKUP_DIR" -maxdepth 1 -type f -name "$name-*.dump" -mtime "+$((BACKUP_RETENTION_DAYS - 1))" -print)
  done
fi

[[ $failed -eq 0 ]] || die "at least one database was not backed up"
log "done"
