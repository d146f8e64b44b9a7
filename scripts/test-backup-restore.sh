#!/usr/bin/env bash
# Proves that scripts/backup-postgres.sh and scripts/restore-postgres.sh give
# back exactly what was dumped, on the real OneFlow schema.
#
# Against the local PostgreSQL (PGHOST/PGPORT/PGUSER, default
# 127.0.0.1:5432 as postgres, trust auth) it:
#   1. creates two scratch databases and applies every migration in
#      migrations/{auth,billing}/postgres/*.sql, in order;
#   2. fills every table with rows generated from its columns (NULLs, quotes,
#      backslashes, newlines and non-ASCII text included);
#   3. records a fingerprint: per table, the row count and an md5 of the rows
#      in order, plus the schema (tables, columns, indexes, constraints);
#   4. backs both up (with stand-in aws and gsutil commands that copy to a
#      local "bucket"), drops the databases, restores them from the bucket
#      copies into the same names, and compares the fingerprints;
#   5. changes rows and restores over the live database (--clean), and
#      compares again; checks that a damaged dump is refused and that
#      retention prunes old dumps but keeps new ones.
# Exits non-zero on any difference. Cleans up after itself.
set -euo pipefail
cd "$(dirname "$0")/.."

export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
ROWS=${ROWS:-200}

say() { printf '== backup-restore: %s\n' "$*"; }
fail() { printf 'FAIL backup-restore: %s\n' "$*" >&2; exit 1; }

pg_isready -q || fail "PostgreSQL is not reachable at $PGHOST:$PGPORT"
psql -d postgres -Atqc 'SELECT 1' >/dev/null || fail "cannot log in to PostgreSQL as $PGUSER"

suffix="$(date +%s)_$$"
auth_db="oneflow_bt_auth_$suffix"
billing_db="oneflow_bt_billing_$suffix"
work=$(mktemp -d)

cleanup() {
  local rc=$?
  for db in "$auth_db" "$billing_db"; do
    psql -d postgres -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
  done
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT INT TERM

# Stand-ins for the cloud CLIs: `cp SRC DST` where either side may be a bucket URI.
mkdir -p "$work/bin" "$work/bucket"
cat >"$work/bin/fake-cloud-cp" <<'EOF'
#!/usr/bin/env bash
set -euo pipefail
args=()
for a in "$@"; do case $a in -*) ;; cp) ;; *) args+=("$a") ;; esac; done
map() { case $1 in s3://* | gs://*) printf '%s/%s' "$FAKE_BUCKET" "${1#*://}" ;; *) printf '%s' "$1" ;; esac; }
src=$(map "${args[0]}"); dst=$(map "${args[1]}")
[[ $dst == */ ]] && dst="$dst$(basename "$src")"
mkdir -p "$(dirname "$dst")"
cp "$src" "$dst"
echo "$FAKE_TOOL ${args[*]}" >>"$FAKE_BUCKET/calls.log"
EOF
chmod +x "$work/bin/fake-cloud-cp"
printf '#!/usr/bin/env bash\n[[ $1 == s3 ]] && shift\nFAKE_TOOL=aws exec "%s" "$@"\n' "$work/bin/fake-cloud-cp" >"$work/bin/aws"
printf '#!/usr/bin/env bash\nFAKE_TOOL=gsutil exec "%s" "$@"\n' "$work/bin/fake-cloud-cp" >"$work/bin/gsutil"
chmod +x "$work/bin/aws" "$work/bin/gsutil"
export FAKE_BUCKET="$work/bucket"

# -- 1. schema ------------------------------------------------------------------
load_schema() {
  local db=$1 service=$2 n=0
  psql -d postgres -qc "CREATE DATABASE \"$db\"" >/dev/null
  for f in migrations/"$service"/postgres/*.sql; do
    psql -d "$db" -v ON_ERROR_STOP=1 -q -f "$f" >/dev/null || fail "migration $f failed"
    n=$((n + 1))
  done
  [[ $n -gt 0 ]] || fail "no migrations found for $service"
  say "$service: $n migrations applied to $db"
}
load_schema "$auth_db" auth
load_schema "$billing_db" billing

# -- 2. rows --------------------------------------------------------------------
# One row per i in 1..ROWS for every table. Every text column of row i holds
# the same value, so foreign keys (api_keys.user_id -> users.id, ...) hold and
# unique and composite keys stay unique; every third row puts NULL in the
# nullable columns.
fill() {
  local db=$1
  psql -d "$db" -v ON_ERROR_STOP=1 -q >/dev/null <<'SQL'
DO $fill$
DECLARE
  t record;
  c record;
  cols text;
  vals text;
  expr text;
BEGIN
  -- Tables are filled in name order; the rows satisfy the foreign keys once
  -- all are in, so the checks are deferred to the restore, which runs them.
  PERFORM set_config('session_replication_role', 'replica', true);
  FOR t IN
    SELECT table_name FROM information_schema.tables
    WHERE table_schema = 'public' AND table_type = 'BASE TABLE'
    ORDER BY table_name
  LOOP
    cols := ''; vals := '';
    FOR c IN
      SELECT column_name, data_type, is_nullable FROM information_schema.columns
      WHERE table_schema = 'public' AND table_name = t.table_name
      ORDER BY ordinal_position
    LOOP
      expr := CASE
        WHEN c.data_type IN ('text', 'character varying') THEN
          $$'r' || i || CASE i % 4 WHEN 0 THEN ' ''quoted'' \ back' WHEN 1 THEN E'\nnext line' WHEN 2 THEN ' é ✓ 漢' ELSE '' END$$
        WHEN c.data_type IN ('bigint', 'integer', 'smallint') THEN 'i * 1000 + 7'
        WHEN c.data_type IN ('numeric', 'double precision', 'real') THEN 'i / 3.0'
        WHEN c.data_type = 'boolean' THEN 'i % 2 = 0'
        WHEN c.data_type LIKE 'timestamp%' THEN $$timestamptz '2025-01-01 00:00:00+00' + i * interval '1 minute'$$
        WHEN c.data_type = 'bytea' THEN $$decode(md5(i::text), 'hex')$$
        ELSE NULL
      END;
      IF expr IS NULL THEN
        RAISE EXCEPTION 'column %.% has type %, which this test cannot fill', t.table_name, c.column_name, c.data_type;
      END IF;
      IF c.is_nullable = 'YES' THEN
        expr := format('CASE WHEN i %% 3 = 0 THEN NULL ELSE %s END', expr);
      END IF;
      cols := cols || CASE WHEN cols = '' THEN '' ELSE ', ' END || quote_ident(c.column_name);
      vals := vals || CASE WHEN vals = '' THEN '' ELSE ', ' END || expr;
    END LOOP;
    EXECUTE format('INSERT INTO %I (%s) SELECT %s FROM generate_series(1, %s) AS i',
                   t.table_name, cols, vals, current_setting('fill.rows'));
  END LOOP;
END
$fill$;
SQL
}
# The DO block reads the row count from a setting.
for db in "$auth_db" "$billing_db"; do
  psql -d postgres -qc "ALTER DATABASE \"$db\" SET fill.rows = '$ROWS'" >/dev/null
  fill "$db" || fail "could not fill $db"
done

# -- 3. fingerprints ------------------------------------------------------------
fingerprint() {
  local db=$1 t
  # Schema: columns, indexes and constraints, in a stable order.
  psql -d "$db" -Atq -v ON_ERROR_STOP=1 <<'SQL'
SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '')
  FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, column_name;
SELECT 'index ' || indexname || ' ' || indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname;
SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
  FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY conrelid::regclass::text, conname;
SQL
  # Data: per table, rows and an md5 of all rows in a fixed order.
  for t in $(psql -d "$db" -Atqc "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1"); do
    psql -d "$db" -Atq -v ON_ERROR_STOP=1 -c \
      "SELECT 'table $t rows=' || count(*) || ' md5=' || md5(coalesce(string_agg(x::text, E'\n' ORDER BY x::text), '')) FROM \"$t\" x"
  done
}
fingerprint "$auth_db" >"$work/auth.before"
fingerprint "$billing_db" >"$work/billing.before"
tables=$(grep -c '^table ' "$work/auth.before" "$work/billing.before" | awk -F: '{s += $2} END {print s}')
grep -q "rows=$ROWS " "$work/auth.before" || fail "auth tables were not filled"
grep -q "rows=$ROWS " "$work/billing.before" || fail "billing tables were not filled"
say "fingerprinted $tables tables with $ROWS rows each"

# -- 4. back up, drop, restore from the bucket ------------------------------------
backups="$work/backups"
PATH="$work/bin:$PATH" BACKUP_DIR="$backups" BACKUP_S3_URI="s3://oneflow-backups/postgres" \
  BACKUP_GCS_URI="gs://oneflow-backups/postgres" \
  scripts/backup-postgres.sh "$auth_db" "postgresql://$PGUSER@$PGHOST:$PGPORT/$billing_db" >"$work/dumps.txt" 2>"$work/backup.log" ||
  { cat "$work/backup.log" >&2; fail "backup-postgres.sh failed"; }
[[ $(wc -l <"$work/dumps.txt") -eq 2 ]] || fail "expected two dump paths, got: $(cat "$work/dumps.txt")"
auth_dump=$(sed -n 1p "$work/dumps.txt")
billing_dump=$(sed -n 2p "$work/dumps.txt")
for f in "$auth_dump" "$billing_dump"; do
  [[ -s $f && -s $f.sha256 ]] || fail "missing dump or checksum: $f"
  cmp -s "$f" "$FAKE_BUCKET/oneflow-backups/postgres/$(basename "$f")" || fail "$(basename "$f") was not uploaded intact"
done
grep -q '^aws ' "$FAKE_BUCKET/calls.log" || fail "nothing was uploaded with aws"
grep -q '^gsutil ' "$FAKE_BUCKET/calls.log" || fail "nothing was uploaded with gsutil"
! grep -q "postgresql://" "$work/backup.log" || fail "the backup log shows a database URL"
say "dumps written and uploaded: $(basename "$auth_dump"), $(basename "$billing_dump")"

for db in "$auth_db" "$billing_db"; do
  psql -d postgres -qc "DROP DATABASE \"$db\" WITH (FORCE)" >/dev/null
done
say "dropped both databases"

PATH="$work/bin:$PATH" scripts/restore-postgres.sh --create \
  "s3://oneflow-backups/postgres/$(basename "$auth_dump")" "$auth_db" 2>>"$work/restore.log" ||
  { cat "$work/restore.log" >&2; fail "restoring auth from S3 failed"; }
PATH="$work/bin:$PATH" scripts/restore-postgres.sh --create \
  "gs://oneflow-backups/postgres/$(basename "$billing_dump")" "postgresql://$PGUSER@$PGHOST:$PGPORT/$billing_db" 2>>"$work/restore.log" ||
  { cat "$work/restore.log" >&2; fail "restoring billing from GCS failed"; }

fingerprint "$auth_db" >"$work/auth.after"
fingerprint "$billing_db" >"$work/billing.after"
diff -u "$work/auth.before" "$work/auth.after" || fail "auth differs after restore"
diff -u "$work/billing.before" "$work/billing.after" || fail "billing differs after restore"
say "restored databases match the originals (schema, row counts, row checksums)"

# -- 5. restore over a live database, a damaged dump, retention --------------------
first_table=$(psql -d "$billing_db" -Atqc "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1 LIMIT 1")
psql -d "$billing_db" -qc "DELETE FROM \"$first_table\" WHERE ctid IN (SELECT ctid FROM \"$first_table\" LIMIT 5)" >/dev/null
psql -d "$billing_db" -qc "CREATE TABLE stray (x int)" >/dev/null
scripts/restore-postgres.sh "$billing_dump" "$billing_db" 2>>"$work/restore.log" ||
  { cat "$work/restore.log" >&2; fail "restoring over the live billing database failed"; }
psql -d "$billing_db" -qc "DROP TABLE stray" >/dev/null # not in the dump, so --clean leaves it
fingerprint "$billing_db" >"$work/billing.again"
diff -u "$work/billing.before" "$work/billing.again" || fail "billing differs after restoring over it"
say "restore over a modified database (--clean) brings it back to the dump"

cp "$billing_dump" "$work/damaged.dump"
cp "$billing_dump.sha256" "$work/damaged.dump.sha256"
printf 'x' | dd of="$work/damaged.dump" bs=1 seek=100 conv=notrunc status=none
if scripts/restore-postgres.sh "$work/damaged.dump" "$billing_db" 2>/dev/null; then
  fail "a damaged dump was restored"
fi
fingerprint "$billing_db" >"$work/billing.after-damaged"
diff -q "$work/billing.before" "$work/billing.after-damaged" >/dev/null || fail "a refused restore changed the database"
say "a damaged dump is refused and leaves the database alone"

old="$backups/$auth_db-20000101T000000Z.dump"
printf 'old' >"$old"
printf 'old' >"$old.sha256"
touch -d '30 days ago' "$old" "$old.sha256"
BACKUP_DIR="$backups" BACKUP_RETENTION_DAYS=7 scripts/backup-postgres.sh "$auth_db" >/dev/null 2>>"$work/backup.log" ||
  fail "second backup failed"
[[ ! -e $old && ! -e $old.sha256 ]] || fail "retention kept a 30-day-old dump"
[[ -e $auth_dump ]] || fail "retention deleted a fresh dump"
say "retention deletes dumps older than BACKUP_RETENTION_DAYS and keeps fresh ones"

say "OK"
