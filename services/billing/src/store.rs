//! The ledger database: append-only entries with unique idempotency keys, the
//! derived balance per account, and one usage record per request. Every
//! money-moving write is one transaction whose idempotency key makes a repeat a
//! no-op, so nothing is ever charged twice.
use oneflow_runtime::{DatabaseConfig, Secret, is_postgres};
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyPool, Transaction};

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Connecting failed.
    #[error(transparent)]
    Connect(#[from] oneflow_runtime::DbError),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    /// The settlement writer stopped (the service is shutting down).
    #[error("the settlement writer has stopped")]
    WriterGone,
}

/// Kinds of ledger entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// Credits given (sign-up, promotion, bootstrap).
    Grant,
    /// Credits bought.
    TopUp,
    /// Usage charged.
    Charge,
    /// Charge returned.
    Refund,
    /// Manual correction (either sign).
    Adjustment,
}

impl EntryKind {
    /// Storage form.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Grant => "grant",
            EntryKind::TopUp => "top_up",
            EntryKind::Charge => "charge",
            EntryKind::Refund => "refund",
            EntryKind::Adjustment => "adjustment",
        }
    }
}

/// A ledger write request; `amount` is signed hundredths of a credit.
#[derive(Debug, Clone)]
pub struct NewEntry<'a> {
    /// Account.
    pub user_id: &'a str,
    /// Kind.
    pub kind: EntryKind,
    /// Signed amount added to the balance.
    pub amount: i64,
    /// Unique per economic event.
    pub idempotency_key: &'a str,
    /// Free text for humans.
    pub note: Option<&'a str>,
    /// Who made it.
    pub actor_user_id: Option<&'a str>,
}

/// A usage record, written with its charge.
#[derive(Debug, Clone)]
pub struct UsageRecord<'a> {
    /// Request id.
    pub request_id: &'a str,
    /// Key id, if a key was used.
    pub key_id: &'a str,
    /// Public model name.
    pub model: &'a str,
    /// Provider that served it.
    pub provider: &'a str,
    /// Deployment that served it.
    pub deployment: &'a str,
    /// chat, embeddings, ...
    pub operation: &'a str,
    /// Tokens.
    pub input_tokens: u64,
    /// Tokens.
    pub output_tokens: u64,
    /// Tokens.
    pub cached_tokens: u64,
    /// Characters synthesised (text-to-speech).
    pub characters: u64,
    /// Milliseconds of audio transcribed (speech-to-text).
    pub audio_millis: u64,
    /// Latency seen by the gateway.
    pub latency_ms: u64,
    /// HTTP status the client got.
    pub status: u32,
    /// The client's X-Request-Id (may be empty).
    pub client_request_id: &'a str,
}

/// A [`UsageRecord`] that owns its strings, to cross a channel.
#[derive(Debug, Clone, Default)]
pub struct OwnedUsageRecord {
    /// Request id.
    pub request_id: String,
    /// Key id, if a key was used.
    pub key_id: String,
    /// Public model name.
    pub model: String,
    /// Provider that served it.
    pub provider: String,
    /// Deployment that served it.
    pub deployment: String,
    /// chat, embeddings, ...
    pub operation: String,
    /// Tokens.
    pub input_tokens: u64,
    /// Tokens.
    pub output_tokens: u64,
    /// Tokens.
    pub cached_tokens: u64,
    /// Characters synthesised (text-to-speech).
    pub characters: u64,
    /// Milliseconds of audio transcribed (speech-to-text).
    pub audio_millis: u64,
    /// Latency seen by the gateway.
    pub latency_ms: u64,
    /// HTTP status the client got.
    pub status: u32,
    /// The client's X-Request-Id (may be empty).
    pub client_request_id: String,
}

impl OwnedUsageRecord {
    /// The borrowed form the store writes.
    pub fn borrowed(&self) -> UsageRecord<'_> {
        UsageRecord {
            request_id: &self.request_id,
            key_id: &self.key_id,
            model: &self.model,
            provider: &self.provider,
            deployment: &self.deployment,
            operation: &self.operation,
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            cached_tokens: self.cached_tokens,
            characters: self.characters,
            audio_millis: self.audio_millis,
            latency_ms: self.latency_ms,
            status: self.status,
            client_request_id: &self.client_request_id,
        }
    }
}

/// Outcome of an idempotent ledger write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// The balance after the entry (or now, for a duplicate).
    pub balance_after: i64,
    /// The idempotency key had been used before; nothing was written.
    pub duplicate: bool,
    /// For a late settlement of a reservation that had expired into a charge:
    /// what was returned (positive) or taken (negative) to correct it.
    pub correction: i64,
}

/// Note of the charge written when a reservation expires unsettled.
pub const EXPIRED_NOTE: &str = "reservation expired unsettled";

/// How usage reports are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageGroup {
    /// By UTC day (the group is the day number since 1970-01-01).
    Day,
    /// By public model.
    Model,
    /// By API key id.
    Key,
}

/// One group of a usage report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageTotals {
    /// The group's value.
    pub group: String,
    /// Requests.
    pub requests: i64,
    /// Input tokens.
    pub input: i64,
    /// Output tokens.
    pub output: i64,
    /// Cached input tokens.
    pub cached: i64,
    /// Characters synthesised (text-to-speech).
    pub characters: i64,
    /// Milliseconds of audio transcribed (speech-to-text).
    pub audio_millis: i64,
    /// Hundredths of a credit charged.
    pub credits: i64,
}

/// One stored usage record, as read back (for audits and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredUsage {
    /// Request id.
    pub request_id: String,
    /// Public model name.
    pub model: String,
    /// chat, embeddings, speech, transcription, ...
    pub operation: String,
    /// Tokens.
    pub input_tokens: i64,
    /// Tokens.
    pub output_tokens: i64,
    /// Tokens.
    pub cached_tokens: i64,
    /// Characters synthesised (text-to-speech).
    pub characters: i64,
    /// Milliseconds of audio transcribed (speech-to-text).
    pub audio_millis: i64,
    /// Hundredths of a credit charged.
    pub credits: i64,
}

/// Handle to the billing database.
#[derive(Clone, Debug)]
pub struct BillingStore {
    pool: AnyPool,
    /// Read replica for usage reports, when configured.
    reports: Option<AnyPool>,
    postgres: bool,
}

/// One UTC day in milliseconds.
const DAY_MILLIS: i64 = 86_400_000;

pub(crate) fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl BillingStore {
    /// Opens the database named by `config.url`.
    pub async fn connect(config: &DatabaseConfig) -> Result<Self, StoreError> {
        let pool = oneflow_runtime::connect_database(config).await?;
        Ok(Self {
            pool,
            reports: None,
            postgres: is_postgres(config.url.expose()),
        })
    }

    /// Sends usage reports to a read replica at `url` (same pool settings as
    /// the primary), so heavy reports do not load the database that settles.
    pub async fn with_report_replica(mut self, config: &DatabaseConfig, url: &Secret) -> Result<Self, StoreError> {
        let replica = DatabaseConfig {
            url: url.clone(),
            ..config.clone()
        };
        self.reports = Some(oneflow_runtime::connect_database(&replica).await?);
        Ok(self)
    }

    /// Applies this service's migrations.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut migrator: Migrator = if self.postgres {
            sqlx::migrate!("../../migrations/billing/postgres")
        } else {
            sqlx::migrate!("../../migrations/billing/sqlite")
        };
        // Versions are numbered per service (auth 1xxxx, billing 2xxxx), so
        // services sharing one database must not treat each other's
        // migrations as missing.
        migrator.set_ignore_missing(true);
        migrator.run(&self.pool).await?;
        Ok(())
    }

    /// Readiness: one round trip.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The account's balance in hundredths of a credit (0 for a new account).
    pub async fn balance(&self, user_id: &str) -> Result<i64, StoreError> {
        let row: Option<(i64,)> = sqlx::query_as("SELECT balance FROM accounts WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map_or(0, |r| r.0))
    }

    /// Appends `entry` unless its idempotency key exists, updating the balance.
    pub async fn append(&self, entry: &NewEntry<'_>) -> Result<Written, StoreError> {
        let mut tx = self.pool.begin().await?;
        let written = append_in(&mut tx, entry).await?;
        if entry.kind == EntryKind::TopUp && !written.duplicate {
            let first =
                sqlx::query("UPDATE accounts SET first_top_up_at = $1 WHERE user_id = $2 AND first_top_up_at IS NULL")
                    .bind(now_millis())
                    .bind(entry.user_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            if first == 1 {
                metrics::counter!("oneflow_funnel_total", "step" => "first_top_up").increment(1);
            }
        }
        tx.commit().await?;
        Ok(written)
    }

    /// Charges a request's usage and records it, once per request id.
    pub async fn settle(&self, user_id: &str, charge: i64, usage: &UsageRecord<'_>) -> Result<Written, StoreError> {
        let mut tx = self.pool.begin().await?;
        let written = settle_in(&mut tx, user_id, charge, usage).await?;
        tx.commit().await?;
        Ok(written)
    }

    /// Settles several requests in one transaction (one commit for all: the
    /// group commit of [`crate::batch`]). Each is idempotent on its own, so
    /// a request settled twice within one batch is charged once. On error
    /// nothing of the batch is written.
    pub async fn settle_batch(&self, items: &[(String, i64, OwnedUsageRecord)]) -> Result<Vec<Written>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut out = Vec::with_capacity(items.len());
        for (user_id, charge, usage) in items {
            out.push(settle_in(&mut tx, user_id, *charge, &usage.borrowed()).await?);
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Charges the whole of a reservation that expired unsettled, once; a
    /// settlement arriving later corrects it (see [`BillingStore::settle`]).
    pub async fn expire_reservation(
        &self,
        user_id: &str,
        request_id: &str,
        amount: i64,
    ) -> Result<Written, StoreError> {
        let key = format!("charge:{request_id}");
        self.append(&NewEntry {
            user_id,
            kind: EntryKind::Charge,
            amount: -amount,
            idempotency_key: &key,
            note: Some(EXPIRED_NOTE),
            actor_user_id: None,
        })
        .await
    }

    /// Deletes up to `batch` usage records created before `before` (retention);
    /// returns how many. The ledger is never pruned: balances stay derivable.
    pub async fn prune_usage(&self, before: i64, batch: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM usage_records WHERE request_id IN \
             (SELECT request_id FROM usage_records WHERE created_at < $1 ORDER BY created_at LIMIT $2)",
        )
        .bind(before)
        .bind(batch)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(done)
    }

    /// Stores a price version (replacing one with the same model and date).
    /// Decimals are stored as text, exactly as written.
    pub async fn upsert_price(
        &self,
        from: i64,
        price: &crate::pricing::ModelPrice,
        actor: Option<&str>,
    ) -> Result<(), StoreError> {
        let text = |d: Option<rust_decimal::Decimal>| d.map(|d| d.to_string());
        sqlx::query(
            "INSERT INTO prices (model, effective_from, input_per_million, output_per_million, cached_input_per_million, \
             per_million_characters, per_minute_audio, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (model, effective_from) DO UPDATE SET \
             input_per_million = excluded.input_per_million, output_per_million = excluded.output_per_million, \
             cached_input_per_million = excluded.cached_input_per_million, \
             per_million_characters = excluded.per_million_characters, per_minute_audio = excluded.per_minute_audio, \
             created_by = excluded.created_by, created_at = excluded.created_at",
        )
        .bind(&price.model)
        .bind(from)
        .bind(price.input_per_million.to_string())
        .bind(price.output_per_million.to_string())
        .bind(text(price.cached_input_per_million))
        .bind(text(price.per_million_characters))
        .bind(text(price.per_minute_audio))
        .bind(actor)
        .bind(now_millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every stored price version (rows that do not parse are skipped and logged).
    pub async fn load_prices(&self) -> Result<Vec<crate::pricing::PriceVersion>, StoreError> {
        type Row = (
            String,
            i64,
            String,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT model, effective_from, input_per_million, output_per_million, cached_input_per_million, \
             per_million_characters, per_minute_audio FROM prices",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(model, from, input, output, cached, characters, audio)| {
                // `Some(None)` is a price that is not set; `None`, one that does not parse.
                let optional = |raw: Option<String>| match raw {
                    Some(raw) => raw.parse().ok().map(Some),
                    None => Some(None),
                };
                let parsed = (|| {
                    Some(crate::pricing::ModelPrice {
                        model: model.clone(),
                        input_per_million: input.parse().ok()?,
                        output_per_million: output.parse().ok()?,
                        cached_input_per_million: optional(cached)?,
                        per_million_characters: optional(characters)?,
                        per_minute_audio: optional(audio)?,
                    })
                })();
                if parsed.is_none() {
                    tracing::error!(%model, "stored price does not parse; skipped");
                }
                parsed.map(|p| (from, p))
            })
            .collect())
    }

    /// Sum of all ledger amounts of an account (equals its balance; for audits and tests).
    pub async fn ledger_sum(&self, user_id: &str) -> Result<i64, StoreError> {
        let row: (Option<i64>,) =
            sqlx::query_as("SELECT CAST(SUM(amount) AS BIGINT) FROM ledger_entries WHERE user_id = $1")
                .bind(user_id)
                .fetch_one(&self.pool)
                .await?;
        Ok(row.0.unwrap_or(0))
    }

    /// Usage of `user_id` in `[from, to)` (Unix ms) grouped by `group`. Ranges
    /// of whole UTC days are answered from the daily rollups (which outlive
    /// the raw records' retention); other ranges from the raw records. Both
    /// read the report replica when one is configured.
    pub async fn usage(
        &self,
        user_id: &str,
        from: i64,
        to: i64,
        group: UsageGroup,
    ) -> Result<Vec<UsageTotals>, StoreError> {
        let whole_days = from.rem_euclid(DAY_MILLIS) == 0 && to.rem_euclid(DAY_MILLIS) == 0;
        let sql = if whole_days {
            let column = match group {
                UsageGroup::Day => "CAST(day AS TEXT)",
                UsageGroup::Model => "model",
                UsageGroup::Key => "key_id",
            };
            format!(
                "SELECT {column} AS grp, CAST(SUM(requests) AS BIGINT), CAST(SUM(input_tokens) AS BIGINT), \
                 CAST(SUM(output_tokens) AS BIGINT), CAST(SUM(cached_tokens) AS BIGINT), \
                 CAST(SUM(characters) AS BIGINT), CAST(SUM(audio_millis) AS BIGINT), \
                 CAST(SUM(credits) AS BIGINT) FROM usage_daily \
                 WHERE user_id = $1 AND day >= $2 AND day < $3 GROUP BY grp ORDER BY grp"
            )
        } else {
            let column = match group {
                UsageGroup::Day => "CAST(created_at / 86400000 AS TEXT)",
                UsageGroup::Model => "model",
                UsageGroup::Key => "COALESCE(key_id, '')",
            };
            format!(
                "SELECT {column} AS grp, COUNT(*), CAST(SUM(input_tokens) AS BIGINT), \
                 CAST(SUM(output_tokens) AS BIGINT), CAST(SUM(cached_tokens) AS BIGINT), \
                 CAST(SUM(characters) AS BIGINT), CAST(SUM(audio_millis) AS BIGINT), \
                 CAST(SUM(credits) AS BIGINT) FROM usage_records \
                 WHERE user_id = $1 AND created_at >= $2 AND created_at < $3 GROUP BY grp ORDER BY grp"
            )
        };
        let (lo, hi) = if whole_days {
            (from / DAY_MILLIS, to / DAY_MILLIS)
        } else {
            (from, to)
        };
        type Row = (String, i64, i64, i64, i64, i64, i64, i64);
        let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(user_id)
            .bind(lo)
            .bind(hi)
            .fetch_all(self.reports.as_ref().unwrap_or(&self.pool))
            .await?;
        Ok(rows
            .into_iter()
            .map(
                |(group, requests, input, output, cached, characters, audio_millis, credits)| UsageTotals {
                    group,
                    requests,
                    input,
                    output,
                    cached,
                    characters,
                    audio_millis,
                    credits,
                },
            )
            .collect())
    }

    /// The usage record of `request_id`, if one is stored.
    pub async fn usage_record(&self, request_id: &str) -> Result<Option<StoredUsage>, StoreError> {
        type Row = (String, String, String, i64, i64, i64, i64, i64, i64);
        let row: Option<Row> = sqlx::query_as(
            "SELECT request_id, model, operation, input_tokens, output_tokens, cached_tokens, characters, \
             audio_millis, credits FROM usage_records WHERE request_id = $1",
        )
        .bind(request_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(
            |(
                request_id,
                model,
                operation,
                input_tokens,
                output_tokens,
                cached_tokens,
                characters,
                audio_millis,
                credits,
            )| {
                StoredUsage {
                    request_id,
                    model,
                    operation,
                    input_tokens,
                    output_tokens,
                    cached_tokens,
                    characters,
                    audio_millis,
                    credits,
                }
            },
        ))
    }

    /// Number of usage records of an account.
    pub async fn usage_count(&self, user_id: &str) -> Result<i64, StoreError> {
        let row: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM usage_records WHERE user_id = $1")
            .bind(user_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.0)
    }
}

/// The statements of one settlement, inside the caller's transaction.
async fn settle_in(
    tx: &mut Transaction<'static, Any>,
    user_id: &str,
    charge: i64,
    usage: &UsageRecord<'_>,
) -> Result<Written, StoreError> {
    let key = format!("charge:{}", usage.request_id);
    let mut written = append_in(
        tx,
        &NewEntry {
            user_id,
            kind: EntryKind::Charge,
            amount: -charge,
            idempotency_key: &key,
            note: None,
            actor_user_id: None,
        },
    )
    .await?;
    let mut record_usage = !written.duplicate;
    if written.duplicate {
        // A swept reservation charged its whole amount under this key:
        // correct that to the real charge, once.
        let expired: Option<(i64,)> =
            sqlx::query_as("SELECT amount FROM ledger_entries WHERE idempotency_key = $1 AND note = $2")
                .bind(&key)
                .bind(EXPIRED_NOTE)
                .fetch_optional(&mut **tx)
                .await?;
        if let Some((held,)) = expired {
            let correction = -held - charge;
            let correction_key = format!("correction:{}", usage.request_id);
            let kind = if correction >= 0 {
                EntryKind::Refund
            } else {
                EntryKind::Adjustment
            };
            let fixed = append_in(
                tx,
                &NewEntry {
                    user_id,
                    kind,
                    amount: correction,
                    idempotency_key: &correction_key,
                    note: Some("late settlement of an expired reservation"),
                    actor_user_id: None,
                },
            )
            .await?;
            if !fixed.duplicate {
                written = Written {
                    balance_after: fixed.balance_after,
                    duplicate: false,
                    correction,
                };
                record_usage = true;
            }
        }
    }
    if record_usage {
        let now = now_millis();
        let inserted = sqlx::query(
                "INSERT INTO usage_records (request_id, user_id, key_id, model, provider, deployment, operation, \
                 input_tokens, output_tokens, cached_tokens, credits, latency_ms, status, created_at, client_request_id, \
                 characters, audio_millis) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
                 ON CONFLICT (request_id) DO NOTHING",
            )
            .bind(usage.request_id)
            .bind(user_id)
            .bind(usage.key_id)
            .bind(usage.model)
            .bind(usage.provider)
            .bind(usage.deployment)
            .bind(usage.operation)
            .bind(to_i64(usage.input_tokens))
            .bind(to_i64(usage.output_tokens))
            .bind(to_i64(usage.cached_tokens))
            .bind(charge)
            .bind(to_i64(usage.latency_ms))
            .bind(i32::try_from(usage.status).unwrap_or(0))
            .bind(now)
            .bind((!usage.client_request_id.is_empty()).then_some(usage.client_request_id))
            .bind(to_i64(usage.characters))
            .bind(to_i64(usage.audio_millis))
            .execute(&mut **tx)
            .await?
            .rows_affected();
        if inserted == 1 {
            sqlx::query(
                "INSERT INTO usage_daily (user_id, day, model, key_id, requests, input_tokens, output_tokens, \
                     cached_tokens, characters, audio_millis, credits) VALUES ($1, $2, $3, $4, 1, $5, $6, $7, $8, $9, $10) \
                     ON CONFLICT (user_id, day, model, key_id) DO UPDATE SET \
                     requests = usage_daily.requests + 1, \
                     input_tokens = usage_daily.input_tokens + excluded.input_tokens, \
                     output_tokens = usage_daily.output_tokens + excluded.output_tokens, \
                     cached_tokens = usage_daily.cached_tokens + excluded.cached_tokens, \
                     characters = usage_daily.characters + excluded.characters, \
                     audio_millis = usage_daily.audio_millis + excluded.audio_millis, \
                     credits = usage_daily.credits + excluded.credits",
            )
            .bind(user_id)
            .bind(now / DAY_MILLIS)
            .bind(usage.model)
            .bind(usage.key_id)
            .bind(to_i64(usage.input_tokens))
            .bind(to_i64(usage.output_tokens))
            .bind(to_i64(usage.cached_tokens))
            .bind(to_i64(usage.characters))
            .bind(to_i64(usage.audio_millis))
            .bind(charge)
            .execute(&mut **tx)
            .await?;
        }
        if (200..300).contains(&usage.status) {
            let first = sqlx::query(
                "UPDATE accounts SET first_request_at = $1 WHERE user_id = $2 AND first_request_at IS NULL",
            )
            .bind(now_millis())
            .bind(user_id)
            .execute(&mut **tx)
            .await?
            .rows_affected();
            if first == 1 {
                metrics::counter!("oneflow_funnel_total", "step" => "first_successful_request").increment(1);
            }
        }
    }
    Ok(written)
}

async fn append_in(tx: &mut Transaction<'static, Any>, entry: &NewEntry<'_>) -> Result<Written, StoreError> {
    let now = now_millis();
    // Create the account row first so the balance update below locks it
    // (PostgreSQL) and concurrent settlements serialise on it.
    sqlx::query(
        "INSERT INTO accounts (user_id, balance, updated_at) VALUES ($1, 0, $2) ON CONFLICT (user_id) DO NOTHING",
    )
    .bind(entry.user_id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    let (balance,): (i64,) = sqlx::query_as(
        "UPDATE accounts SET balance = balance + $1, updated_at = $2 WHERE user_id = $3 RETURNING balance",
    )
    .bind(entry.amount)
    .bind(now)
    .bind(entry.user_id)
    .fetch_one(&mut **tx)
    .await?;
    let inserted = sqlx::query(
        "INSERT INTO ledger_entries (id, user_id, kind, amount, idempotency_key, note, actor_user_id, balance_after, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (idempotency_key) DO NOTHING",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(entry.user_id)
    .bind(entry.kind.as_str())
    .bind(entry.amount)
    .bind(entry.idempotency_key)
    .bind(entry.note)
    .bind(entry.actor_user_id)
    .bind(balance)
    .bind(now)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        // A repeat: undo the balance change inside the same transaction.
        let (balance,): (i64,) =
            sqlx::query_as("UPDATE accounts SET balance = balance - $1 WHERE user_id = $2 RETURNING balance")
                .bind(entry.amount)
                .bind(entry.user_id)
                .fetch_one(&mut **tx)
                .await?;
        return Ok(Written {
            balance_after: balance,
            duplicate: true,
            correction: 0,
        });
    }
    Ok(Written {
        balance_after: balance,
        duplicate: false,
        correction: 0,
    })
}
