#!/usr/bin/env bash
# Restores a dump made by scripts/backup-postgres.sh into a named database.
#
#   scripts/restore-postgres.sh [--create] DUMP TARGET
#
# DUMP    a local .dump file, or s3://… / gs://… (fetched with aws / gsutil);
#         a .sha256 beside it is checked when present.
# TARGET  a database name (libpq variables PGHOST, PGPORT, PGUSER, PGPASSWORD)
#         or a postgres:// URL. It is overwritten: every object in the dump is
#         dropped first (--clean --if-exists), then recreated and reloaded, in
#         one transaction, so a failed restore leaves the database as it was.
# --create  create TARGET first if it does not exist (needs CREATEDB; the
#           maintenance database "postgres" is used for that).
#
# Ownership and grants are not restored (--no-owner --no-privileges): the
# objects belong to the user running the restore, which should be the
# service's database user. Stop the service (or scale it to 0) before
# restoring over a live database. See docs/operations/backup-restore.md.
set -euo pipefail

log() { printf '%s restore: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

create=0
args=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --create) create=1 ;;
    -h | --help) usage ;;
    -*) die "unknown option $1" ;;
    *) args+=("$1") ;;
  esac
  shift
done
[[ ${#args[@]} -eq 2 ]] || usage
dump=${args[0]}
target=${args[1]}

command -v pg_restore >/dev/null || die "pg_restore not found"
command -v psql >/dev/null || die "psql not found"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Fetch a remote dump (and its checksum, if there is one).
case $dump in
  s3://*)
    command -v aws >/dev/null || die "aws CLI needed for $dump"
    log "fetching $(basename "$dump") from S3"
    aws s3 cp --only-show-errors "$dump" "$work/" || die "cannot fetch the dump"
    aws s3 cp --only-show-errors "$dump.sha256" "$work/" 2>/dev/null || true
    dump="$work/$(basename "$dump")"
    ;;
  gs://*)
    command -v gsutil >/dev/null || die "gsutil needed for $dump"
    log "fetching $(basename "$dump") from GCS"
    gsutil -q cp "$dump" "$work/" || die "cannot fetch the dump"
    gsutil -q cp "$dump.sha256" "$work/" 2>/dev/null || true
    dump="$work/$(basename "$dump")"
    ;;
esac
[[ -f $dump ]] || die "no such dump: $dump"

if [[ -f $dump.sha256 ]]; then
  expected=$(cut -d' ' -f1 "$dump.sha256")
  actual=$(sha256sum "$dump" | cut -d' ' -f1)
  [[ $expected == "$actual" ]] || die "checksum mismatch for $(basename "$dump"): the file is damaged"
  log "checksum ok"
fi
pg_restore --list "$dump" >/dev/null || die "$(basename "$dump") is not a pg_dump custom-format archive"

# The database name, for logs and --create (never print a URL: it may hold a password).
if [[ $target == postgres://* || $target == postgresql://* ]]; then
  name=${target%%\?*}
  name=${name##*/}
  maintenance="${target%/*}/postgres"
  [[ $target == *\?* ]] && maintenance="$maintenance?${target#*\?}"
else
  name=$target
  maintenance=postgres
fi
[[ $name =~ ^[A-Za-z0-9_.-]+$ ]] || die "cannot read a database name from the target"

exists=$(psql --no-password --dbname="$maintenance" -Atc "SELECT 1 FROM pg_database WHERE datname = '$name'") ||
  die "cannot connect to the server"
if [[ $exists != 1 ]]; then
  [[ $create -eq 1 ]] || die "database $name does not exist (pass --create to create it)"
  log "creating database $name"
  psql --no-password --dbname="$maintenance" -v ON_ERROR_STOP=1 -qc "CREATE DATABASE \"$name\"" >/dev/null
fi

log "restoring $(basename "$dump") into $name"
start=$(date +%s)
pg_restore --no-password --dbname="$target" --clean --if-exists --no-owner --no-privileges \
  --single-transaction --exit-on-error "$dump"
log "restored into $name in $(($(date +%s) - start))s"
