//! The store: banks, content, signals and keys, in the embedded SQLite file of the data
//! folder or in PostgreSQL.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::db::{Db, Dialect, PgConnection, Row, RowLock, Transaction, is_unique_violation, params};
use serde_json::json;

use crate::audit::{self, AuditCheck, AuditEntry};
use crate::migrations::migrate;
use crate::model::{
    ApiKey, Bank, BankName, BankUpdate, Content, ContentId, ContentSummary, ContentUpdate, NewBank,
    NewContent, Signal, SignalRow,
};
use crate::postgres_url::{PostgresTarget, without_password};
use crate::{DATABASE_FILE, StoreError, now_rfc3339};

/// Where the store lives: `sqlite://PATH` (a file, by default the data folder's) or a
/// `postgres://` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreLocation {
    Sqlite(PathBuf),
    Postgres(String),
}

impl StoreLocation {
    /// The embedded default: the SQLite file inside `data_dir`.
    pub fn in_data_folder(data_dir: &Path) -> StoreLocation {
        StoreLocation::Sqlite(data_dir.join(DATABASE_FILE))
    }

    /// Reads `sqlite://PATH` or `postgres://…` (also `postgresql://…`).
    pub fn parse(url: &str) -> Result<StoreLocation, StoreError> {
        let invalid = |reason: &str| StoreError::StoreUrl {
            url: without_password(url),
            reason: reason.to_string(),
        };
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(invalid("sqlite:// needs a file path"));
            }
            Ok(StoreLocation::Sqlite(PathBuf::from(path)))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            PostgresTarget::parse(url).map_err(|reason| invalid(&reason))?;
            Ok(StoreLocation::Postgres(url.to_string()))
        } else {
            Err(invalid(
                "expected sqlite://PATH or postgres://USER@HOST:PORT/DATABASE",
            ))
        }
    }

    /// The location without its password, for messages.
    pub fn display(&self) -> String {
        match self {
            StoreLocation::Sqlite(path) => format!("sqlite://{}", path.display()),
            StoreLocation::Postgres(url) => match PostgresTarget::parse(url) {
                Ok(PostgresTarget { config, .. }) => {
                    let host = match config.get_hosts().first() {
                        Some(postgres::config::Host::Tcp(host)) => host.clone(),
                        Some(postgres::config::Host::Unix(path)) => path.display().to_string(),
                        None => String::new(),
                    };
                    let port = config.get_ports().first().copied().unwrap_or(5432);
                    format!(
                        "postgres://{}@{host}:{port}/{}",
                        config.get_user().unwrap_or(""),
                        config.get_dbname().unwrap_or("")
                    )
                }
                Err(_) => "postgres://…".to_string(),
            },
        }
    }
}

/// A connection to the PostgreSQL store at `url`, with TLS as its `sslmode` and
/// `sslrootcert` say (see `crate::postgres_url`): for the store itself and for a node's
/// other connections to it (its `LISTEN`, its leader's lock).
pub fn connect_postgres(url: &str) -> Result<postgres::Client, StoreError> {
    let target = PostgresTarget::parse(url).map_err(|reason| StoreError::StoreUrl {
        url: without_password(url),
        reason,
    })?;
    target.connect(&without_password(url))
}

/// How long a SQLite connection waits for another process's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Puts the file in WAL mode (a setting the file keeps). Switching a new file needs it to
/// itself for a moment, and SQLite answers busy at once, without the busy timeout's wait,
/// when another connection is opening it too (a server and a command started together): so
/// a busy answer is tried again, for as long as the busy timeout would have waited.
fn use_wal(conn: &rusqlite::Connection) -> Result<(), StoreError> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Err(e)
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            done => return Ok(done?),
        }
    }
}

/// A connection to the store.
pub struct Store {
    db: Db,
    /// Who the audit log names for the changes made through this connection.
    actor: String,
    /// This connection's name in the change feed, so that it can skip its own changes.
    node: String,
}

/// A name for one process's connection, unique enough among the nodes of one store.
fn new_node_id() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{:x}-{:x}", std::process::id(), nanos)
}

fn labels_to_json(labels: &[String]) -> String {
    serde_json::to_string(labels).unwrap_or_else(|_| "[]".to_string())
}

fn labels_from_json(text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        what: "labels",
        detail: e.to_string(),
    })
}

fn bank_name_from_db(name: String) -> Result<BankName, StoreError> {
    BankName::new(&name).map_err(|e| StoreError::Corrupt {
        what: "bank name",
        detail: e.to_string(),
    })
}

impl Store {
    /// Opens (creating when absent) the store in `data_dir`, and migrates it.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataFolder {
            path: data_dir.display().to_string(),
            source,
        })?;
        Self::open_at(&StoreLocation::in_data_folder(data_dir))
    }

    /// Opens (creating when absent) the store at `location`, and migrates it.
    pub fn open_at(location: &StoreLocation) -> Result<Store, StoreError> {
        match location {
            StoreLocation::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path)?;
                Self::configure(conn, &path.display().to_string())
            }
            StoreLocation::Postgres(url) => {
                let client = connect_postgres(url)?;
                let db = Db::Postgres(Box::new(std::cell::RefCell::new(PgConnection::new(client))));
                migrate(&db, &location.display())?;
                Ok(Store {
                    db,
                    actor: "unknown".to_string(),
                    node: new_node_id(),
                })
            }
        }
    }

    /// A store that lives in memory only, for tests and dry runs.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Self::configure(rusqlite::Connection::open_in_memory()?, ":memory:")
    }

    /// Which SQL the store speaks.
    pub fn dialect(&self) -> crate::Dialect {
        self.db.dialect()
    }

    fn configure(conn: rusqlite::Connection, path: &str) -> Result<Store, StoreError> {
        // First, so that everything after waits for other processes' locks rather than
        // failing at once: another process opening it at the same time may be migrating it.
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // WAL lets readers (the server, a `match` run) go on while an import writes;
        // NORMAL sync is durable across process crashes, which is what WAL needs.
        use_wal(&conn)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let db = Db::Sqlite(conn);
        migrate(&db, path)?;
        Ok(Store {
            db,
            actor: "unknown".to_string(),
            node: new_node_id(),
        })
    }

    /// Names who makes the following changes, in the audit log: `key:<name>`,
    /// `cli:<user>`.
    pub fn set_actor(&mut self, actor: impl Into<String>) {
        self.actor = actor.into();
    }

    pub(crate) fn actor(&self) -> &str {
        &self.actor
    }

    /// This connection's name in the change feed.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Names this connection like another of the same process (see [`crate::StorePool`]).
    pub(crate) fn set_node(&mut self, node: &str) {
        self.node = node.to_string();
    }

    /// Whether PostgreSQL closed this connection: every query on it would fail.
    pub fn is_closed(&self) -> bool {
        self.db.is_closed()
    }

    pub(crate) fn db(&self) -> &Db {
        &self.db
    }

    /// Audit entries after `since`, oldest first.
    pub fn audit_entries(&self, since: i64) -> Result<Vec<AuditEntry>, StoreError> {
        audit::entries(&self.db, since)
    }

    /// [`Store::audit_entries`], handed to `each` one at a time as they are read.
    pub fn for_each_audit_entry<E: From<StoreError>>(
        &self,
        since: i64,
        each: impl FnMut(AuditEntry) -> Result<(), E>,
    ) -> Result<(), E> {
        audit::for_each_entry(&self.db, since, each)
    }

    /// Checks the audit log's hash chain from its first entry.
    pub fn verify_audit(&self) -> Result<AuditCheck, StoreError> {
        audit::verify(&self.db)
    }

    // ---- banks ---------------------------------------------------------------------

    pub fn create_bank(&mut self, name: &BankName, new: NewBank) -> Result<Bank, StoreError> {
        let tx = self.db.transaction()?;
        // The name's UNIQUE constraint decides between two creating it at once (a check
        // before the insert lets both through on PostgreSQL).
        let created: Option<i64> = tx.query_row(
            "INSERT INTO bank (name, description, labels, enabled, enabled_ratio, created_at, negative)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (name) DO NOTHING RETURNING id",
            params![
                name.as_str(),
                new.description,
                labels_to_json(&new.labels),
                new.enabled,
                new.enabled_ratio,
                now_rfc3339(),
                new.negative
            ],
            |r| r.get(0),
        )?;
        let id = created.ok_or_else(|| StoreError::BankExists(name.to_string()))?;
        write_thresholds(&tx, id, &new.thresholds)?;
        crate::changes::record(&tx, &self.node, "bank.changed", Some(id), None, json!({}))?;
        audit::append(
            &tx,
            &self.actor,
            "bank.created",
            json!({ "bank": name.as_str(), "enabled": new.enabled, "enabled_ratio": new.enabled_ratio,
                    "thresholds": new.thresholds, "labels": new.labels,
                    "negative": new.negative }),
        )?;
        // Read before committing: once committed, another connection may rename or delete it.
        let bank = self.bank(name.as_str())?;
        tx.commit()?;
        Ok(bank)
    }

    pub fn banks(&self) -> Result<Vec<Bank>, StoreError> {
        let rows = self.db.query_map(
            "SELECT id, name, description, labels, enabled, created_at, enabled_ratio, negative FROM bank ORDER BY name",
            params![],
            BankRow::read,
        )?;
        rows.into_iter().map(|row| row.into_bank(self)).collect()
    }

    pub fn bank(&self, name: &str) -> Result<Bank, StoreError> {
        self.db
            .query_row(
                "SELECT id, name, description, labels, enabled, created_at, enabled_ratio, negative FROM bank WHERE name = ?1",
                params![name],
                BankRow::read,
            )?
            .ok_or_else(|| StoreError::NoSuchBank(name.to_string()))?
            .into_bank(self)
    }

    /// The bank with id `id`, if there is one (the change feed names banks by id).
    pub fn bank_by_id(&self, id: i64) -> Result<Option<Bank>, StoreError> {
        self.db
            .query_row(
                "SELECT id, name, description, labels, enabled, created_at, enabled_ratio, negative FROM bank WHERE id = ?1",
                params![id],
                BankRow::read,
            )?
            .map(|row| row.into_bank(self))
            .transpose()
    }

    pub fn update_bank(&mut self, name: &str, update: BankUpdate) -> Result<Bank, StoreError> {
        let changes = json!({
            "name": update.name.as_ref().map(BankName::as_str), "description": update.description,
            "labels": update.labels, "enabled": update.enabled, "enabled_ratio": update.enabled_ratio,
            "thresholds": update.thresholds, "negative": update.negative,
        });
        let tx = self.db.transaction()?;
        let id = lock_bank(&tx, name, RowLock::NoKeyUpdate)?;
        let now = write_bank_update(&tx, id, name, update)?;
        audit::append(
            &tx,
            &self.actor,
            "bank.updated",
            json!({ "bank": name, "now": now, "changes": changes }),
        )?;
        crate::changes::record(&tx, &self.node, "bank.changed", Some(id), None, json!({}))?;
        // Read before committing: once committed, another connection may rename or delete it.
        let bank = self.bank(&now)?;
        tx.commit()?;
        Ok(bank)
    }

    /// Deletes a bank with all its content and signals; returns how much content went.
    pub fn delete_bank(&mut self, name: &str) -> Result<u64, StoreError> {
        let tx = self.db.transaction()?;
        let id = lock_bank(&tx, name, RowLock::Update)?;
        // After the bank row, before its content rows: see `changes::lock_logs_before_content`.
        crate::changes::lock_logs_before_content(&tx)?;
        // Explicit deletes in bulk are much faster than row-by-row cascades.
        tx.execute("DELETE FROM signal WHERE bank_id = ?1", params![id])?;
        let content = tx.execute("DELETE FROM content WHERE bank_id = ?1", params![id])?;
        tx.execute("DELETE FROM bank WHERE id = ?1", params![id])?;
        audit::append(
            &tx,
            &self.actor,
            "bank.deleted",
            json!({ "bank": name, "content_deleted": content }),
        )?;
        crate::changes::record(&tx, &self.node, "bank.changed", Some(id), None, json!({}))?;
        tx.commit()?;
        Ok(content)
    }

    pub fn content_count(&self, bank_id: i64) -> Result<u64, StoreError> {
        self.db.query_value(
            "SELECT count(*) FROM content WHERE bank_id = ?1",
            params![bank_id],
        )
    }

    // ---- content -------------------------------------------------------------------

    /// Starts adding content to `bank`. Nothing is visible to others until
    /// [`ContentWriter::commit`]; dropping the writer undoes everything it wrote.
    pub fn content_writer(&mut self, bank: &str) -> Result<ContentWriter<'_>, StoreError> {
        let tx = self.db.transaction()?;
        // Held until the writer commits: the bank is not deleted under it.
        let bank_id = lock_bank(&tx, bank, RowLock::KeyShare)?;
        Ok(ContentWriter {
            tx,
            bank_id,
            bank: bank.to_string(),
            actor: self.actor.clone(),
            node: self.node.clone(),
            created_at: now_rfc3339(),
            ids: Vec::new(),
            written: 0,
            first_id: None,
            last_id: None,
        })
    }

    pub fn content(&self, id: ContentId) -> Result<Content, StoreError> {
        let mut found = None;
        self.read_content("c.id = ?1", id, |content| {
            found = Some(content);
            Ok::<(), StoreError>(())
        })?;
        found.ok_or(StoreError::NoSuchContent(id))
    }

    /// Calls `visit` with every piece of content in `bank`, in the order it was added.
    pub fn for_each_content<E: From<StoreError>>(
        &self,
        bank: &str,
        visit: impl FnMut(Content) -> Result<(), E>,
    ) -> Result<(), E> {
        let bank = self.bank(bank)?;
        self.read_content("c.bank_id = ?1", bank.id, visit)
    }

    fn read_content<E: From<StoreError>>(
        &self,
        filter: &str,
        key: i64,
        mut visit: impl FnMut(Content) -> Result<(), E>,
    ) -> Result<(), E> {
        let sql = format!(
            "SELECT c.id, b.name, c.external_id, c.labels, c.note, c.origin, c.created_at, c.disabled_until,
                    s.signal_type, s.value, c.metadata
             FROM content c JOIN bank b ON b.id = c.bank_id LEFT JOIN signal s ON s.content_id = c.id
             WHERE {filter} ORDER BY c.id, s.id"
        );
        let mut current: Option<Content> = None;
        self.db.for_each(&sql, params![key], |row| -> Result<(), E> {
            let id: ContentId = row.get(0)?;
            if current.as_ref().is_some_and(|c| c.id != id)
                && let Some(done) = current.take()
            {
                visit(done)?;
            }
            if current.is_none() {
                current = Some(content_from_row(row)?);
            }
            let signal_type: Option<String> = row.get(8)?;
            if let (Some(content), Some(signal_type)) = (current.as_mut(), signal_type) {
                let value: String = row.get(9)?;
                content.signals.push(Signal { signal_type, value });
            }
            Ok(())
        })?;
        if let Some(done) = current {
            visit(done)?;
        }
        Ok(())
    }

    /// One page of a bank's content for people to browse, newest first: content with an id
    /// below `before` (all when `None`), at most `limit`.
    pub fn content_page(
        &self,
        bank_id: i64,
        before: Option<ContentId>,
        limit: usize,
    ) -> Result<Vec<ContentSummary>, StoreError> {
        self.db.query_map(
            "SELECT c.id, c.external_id, c.note, c.origin, c.created_at, c.disabled_until,
                    EXISTS (SELECT 1 FROM stored_media m WHERE m.content_id = c.id)
             FROM content c WHERE c.bank_id = ?1 AND c.id < ?2 ORDER BY c.id DESC LIMIT ?3",
            params![bank_id, before.unwrap_or(ContentId::MAX), limit as i64],
            |r| {
                Ok(ContentSummary {
                    id: r.get(0)?,
                    external_id: r.get(1)?,
                    note: r.get(2)?,
                    origin: r.get(3)?,
                    created_at: r.get(4)?,
                    disabled_until: r.get(5)?,
                    has_media: r.get(6)?,
                })
            },
        )
    }

    /// Sets or clears the time until which content does not match.
    pub fn set_content_disabled_until(
        &mut self,
        id: ContentId,
        until: Option<&str>,
    ) -> Result<(), StoreError> {
        let update = ContentUpdate {
            disabled_until: Some(until.map(str::to_string)),
            ..ContentUpdate::default()
        };
        self.update_content(id, &update)
    }

    /// Changes content's note and disabled-until time in one transaction: all of the update
    /// lands, or none of it.
    pub fn update_content(&mut self, id: ContentId, update: &ContentUpdate) -> Result<(), StoreError> {
        let tx = self.db.transaction()?;
        // Before the content row: see `changes::lock_logs_before_content`.
        crate::changes::lock_logs_before_content(&tx)?;
        let until = update.disabled_until.as_ref().map(Option::as_deref);
        // A field left out keeps its value; content that does not exist is an error even
        // when nothing is to change.
        let changed = tx.execute(
            "UPDATE content SET note = coalesce(?1, note),
                                disabled_until = CASE WHEN ?2 THEN ?3 ELSE disabled_until END
             WHERE id = ?4",
            params![update.note, until.is_some(), until.flatten(), id],
        )?;
        if changed == 0 {
            return Err(StoreError::NoSuchContent(id));
        }
        if let Some(note) = &update.note {
            let entry = json!({ "content_id": id, "note": note });
            audit::append(&tx, &self.actor, "content.note", entry)?;
        }
        if let Some(until) = until {
            let entry = json!({ "content_id": id, "until": until });
            audit::append(&tx, &self.actor, "content.disabled_until", entry)?;
            let detail = json!({ "until": until });
            crate::changes::record(&tx, &self.node, "content.disabled", None, Some(id), detail)?;
        }
        tx.commit()
    }

    /// Deletes content and its signals; returns what was deleted.
    pub fn delete_content(&mut self, id: ContentId) -> Result<Content, StoreError> {
        let tx = self.db.transaction()?;
        // Before the content row: see `changes::lock_logs_before_content`.
        crate::changes::lock_logs_before_content(&tx)?;
        let content = self.content(id)?;
        let bank_id: Option<i64> =
            tx.query_row("SELECT bank_id FROM content WHERE id = ?1", params![id], |r| {
                r.get(0)
            })?;
        tx.execute("DELETE FROM signal WHERE content_id = ?1", params![id])?;
        // On PostgreSQL another connection may have deleted it since it was read here (this
        // delete waits for that one to commit, then finds nothing): nothing to record then.
        if tx.execute("DELETE FROM content WHERE id = ?1", params![id])? == 0 {
            return Err(StoreError::NoSuchContent(id));
        }
        audit::append(
            &tx,
            &self.actor,
            "content.deleted",
            json!({ "content_id": id, "bank": content.bank.as_str(), "signals": content.signals }),
        )?;
        let pdq: Vec<&str> = content
            .signals
            .iter()
            .filter(|s| s.signal_type == "pdq")
            .map(|s| s.value.as_str())
            .collect();
        let detail = json!({ "pdq": pdq });
        crate::changes::record(&tx, &self.node, "content.removed", bank_id, Some(id), detail)?;
        tx.commit()?;
        Ok(content)
    }

    // ---- API keys ------------------------------------------------------------------

    /// Stores a new key. Only a hash of its secret is kept.
    pub fn create_key(
        &mut self,
        id: &str,
        name: &str,
        role: &str,
        secret_hash: &[u8],
    ) -> Result<ApiKey, StoreError> {
        let tx = self.db.transaction()?;
        // The name's UNIQUE constraint decides between two creating it at once: a check
        // before the insert lets both through on PostgreSQL, neither seeing the other's key
        // before it commits.
        let created = tx.execute(
            "INSERT INTO api_key (id, name, role, secret_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (name) DO NOTHING",
            params![id, name, role, secret_hash, now_rfc3339()],
        )?;
        if created == 0 {
            return Err(StoreError::KeyExists(name.to_string()));
        }
        audit::append(
            &tx,
            &self.actor,
            "key.created",
            json!({ "key": name, "id": id, "role": role }),
        )?;
        tx.commit()?;
        self.keys()?
            .into_iter()
            .find(|k| k.id == id)
            .ok_or_else(|| StoreError::NoSuchKey(name.to_string()))
    }

    pub fn keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        self.db.query_map(
            "SELECT id, name, role, created_at, revoked_at FROM api_key ORDER BY name",
            params![],
            api_key_from_row,
        )
    }

    /// The key with public id `id` and the stored hash of its secret.
    pub fn key_for_check(&self, id: &str) -> Result<Option<(ApiKey, Vec<u8>)>, StoreError> {
        self.db.query_row(
            "SELECT id, name, role, created_at, revoked_at, secret_hash FROM api_key WHERE id = ?1",
            params![id],
            |r| Ok((api_key_from_row(r)?, r.get(5)?)),
        )
    }

    pub fn revoke_key(&mut self, name: &str) -> Result<ApiKey, StoreError> {
        let tx = self.db.transaction()?;
        let changed = tx.execute(
            "UPDATE api_key SET revoked_at = ?1 WHERE name = ?2 AND revoked_at IS NULL",
            params![now_rfc3339(), name],
        )?;
        if changed > 0 {
            audit::append(&tx, &self.actor, "key.revoked", json!({ "key": name }))?;
            // Revoking a reviewer's key ends their console sessions too (a session names the
            // key it was opened with).
            tx.execute("DELETE FROM console_session WHERE reviewer = ?1", params![name])?;
            // Servers remember keys they checked: this tells them to forget this one.
            let id: String = tx.query_value("SELECT id FROM api_key WHERE name = ?1", params![name])?;
            crate::changes::record(&tx, &self.node, "key.revoked", None, None, json!({ "id": id }))?;
        }
        tx.commit()?;
        let key = self.keys()?.into_iter().find(|k| k.name == name);
        match (changed, key) {
            (_, Some(key)) => Ok(key),
            (_, None) => Err(StoreError::NoSuchKey(name.to_string())),
        }
    }

    // ---- index loading -------------------------------------------------------------

    /// Every signal of `signal_type`, of every bank, enabled or not (the matcher filters
    /// by bank and content state at match time, so changes to them apply at once).
    pub fn for_each_signal(
        &self,
        signal_type: &str,
        mut visit: impl FnMut(SignalRow),
    ) -> Result<(), StoreError> {
        self.db.for_each(
            "SELECT content_id, bank_id, value FROM signal WHERE signal_type = ?1 ORDER BY id",
            params![signal_type],
            |row| {
                visit(SignalRow {
                    content_id: row.get(0)?,
                    bank_id: row.get(1)?,
                    value: row.get(2)?,
                });
                Ok::<_, StoreError>(())
            },
        )
    }

    /// Content with a `disabled_until` set, and that time (it may have passed).
    pub fn disabled_content(&self) -> Result<HashMap<ContentId, String>, StoreError> {
        let disabled = self.db.query_map(
            "SELECT id, disabled_until FROM content WHERE disabled_until IS NOT NULL",
            params![],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(disabled.into_iter().collect())
    }
}

/// An `api_key` row whose first five columns are id, name, role, created_at, revoked_at.
fn api_key_from_row(r: &Row<'_>) -> Result<ApiKey, StoreError> {
    Ok(ApiKey {
        id: r.get(0)?,
        name: r.get(1)?,
        role: r.get(2)?,
        created_at: r.get(3)?,
        revoked_at: r.get(4)?,
    })
}

/// The id of bank `name`, its row locked with `lock` until the transaction ends, so that it
/// cannot be deleted before the transaction writes; a bank deleted before is `NoSuchBank`.
fn lock_bank(tx: &Db, name: &str, lock: RowLock) -> Result<i64, StoreError> {
    tx.query_row(
        &format!("SELECT id FROM bank WHERE name = ?1{}", tx.row_lock(lock)),
        params![name],
        |r| r.get(0),
    )?
    .ok_or_else(|| StoreError::NoSuchBank(name.to_string()))
}

/// Writes `update` to bank `id` (named `name`); answers the bank's name now.
fn write_bank_update(tx: &Db, id: i64, name: &str, update: BankUpdate) -> Result<String, StoreError> {
    // A field left out keeps its value.
    tx.execute(
        "UPDATE bank SET description = coalesce(?1, description), labels = coalesce(?2, labels),
                         negative = coalesce(?3, negative), enabled_ratio = coalesce(?4, enabled_ratio),
                         enabled = coalesce(?5, enabled)
         WHERE id = ?6",
        params![
            update.description,
            update.labels.as_deref().map(labels_to_json),
            update.negative,
            update.enabled_ratio,
            update.enabled,
            id
        ],
    )?;
    if let Some(thresholds) = update.thresholds {
        tx.execute("DELETE FROM bank_threshold WHERE bank_id = ?1", params![id])?;
        write_thresholds(tx, id, &thresholds)?;
    }
    match update.name {
        Some(new_name) if new_name.as_str() != name => {
            rename_bank(tx, id, &new_name)?;
            Ok(new_name.to_string())
        }
        _ => Ok(name.to_string()),
    }
}

/// Renames bank `id`; a name taken is `BankExists`, as the name's UNIQUE constraint says
/// (a check before the update lets two renames, or a rename and a create, through at once
/// on PostgreSQL).
fn rename_bank(tx: &Db, id: i64, new_name: &BankName) -> Result<(), StoreError> {
    match tx.execute(
        "UPDATE bank SET name = ?1 WHERE id = ?2",
        params![new_name.as_str(), id],
    ) {
        Err(error) if is_unique_violation(&error) => Err(StoreError::BankExists(new_name.to_string())),
        done => done.map(drop),
    }
}

fn write_thresholds(tx: &Db, bank_id: i64, thresholds: &BTreeMap<String, u32>) -> Result<(), StoreError> {
    for (signal_type, distance) in thresholds {
        tx.execute(
            "INSERT INTO bank_threshold (bank_id, signal_type, max_distance) VALUES (?1, ?2, ?3)",
            params![bank_id, signal_type, distance],
        )?;
    }
    Ok(())
}

/// Adds content to one bank inside one transaction: all of it lands, or none.
pub struct ContentWriter<'s> {
    tx: Transaction<'s>,
    bank_id: i64,
    bank: String,
    actor: String,
    node: String,
    created_at: String,
    /// What was written, for the change feed.
    ids: Vec<ContentId>,
    written: u64,
    first_id: Option<ContentId>,
    last_id: Option<ContentId>,
}

impl ContentWriter<'_> {
    /// Records, in the same transaction, that content `content_id` was made from media
    /// with these facts: bank content is a sighting too.
    pub fn record_sighting(
        &mut self,
        content_id: ContentId,
        facts: &crate::MediaFacts,
    ) -> Result<i64, StoreError> {
        let origin = crate::ledger::SightingOrigin {
            bank: Some(&self.bank),
            bank_content: Some(content_id),
            ..Default::default()
        };
        crate::ledger::append(&self.tx, &self.node, &origin, facts)
    }

    /// Keeps, in the same transaction, the file content `content_id` was made from, for
    /// the review console's bank pages.
    pub fn keep_media(
        &mut self,
        content_id: ContentId,
        media: &crate::StoredMedia,
    ) -> Result<(), StoreError> {
        self.tx.execute(
            "INSERT INTO stored_media (content_id, mime, bytes, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![content_id, media.mime, media.bytes, self.created_at],
        )?;
        Ok(())
    }

    pub fn insert(&mut self, item: &NewContent) -> Result<ContentId, StoreError> {
        // SQLite would give a deleted newest content's id again; migration 12's floor
        // says where new ids start (PostgreSQL's identity never goes back).
        let sql = match self.tx.dialect() {
            Dialect::Sqlite => {
                "INSERT INTO content (id, bank_id, external_id, labels, note, origin, created_at, metadata)
                 VALUES ((SELECT max(coalesce((SELECT max(id) FROM content), 0) + 1, next) FROM content_id_floor),
                         ?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id"
            }
            Dialect::Postgres => {
                "INSERT INTO content (bank_id, external_id, labels, note, origin, created_at, metadata)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id"
            }
        };
        let content_id = self.tx.insert(
            sql,
            params![
                self.bank_id,
                item.external_id,
                labels_to_json(&item.labels),
                item.note,
                item.origin,
                self.created_at,
                item.metadata
                    .as_ref()
                    .map_or_else(|| "{}".to_string(), |m| m.to_string()),
            ],
        )?;
        for signal in &item.signals {
            self.tx.execute(
                "INSERT INTO signal (content_id, bank_id, signal_type, value) VALUES (?1, ?2, ?3, ?4)",
                params![content_id, self.bank_id, signal.signal_type, signal.value],
            )?;
        }
        self.written += 1;
        self.ids.push(content_id);
        self.first_id.get_or_insert(content_id);
        self.last_id = Some(content_id);
        Ok(content_id)
    }

    /// Makes everything written visible at once; returns how much content that was.
    pub fn commit(self) -> Result<u64, StoreError> {
        if self.written > 0 {
            audit::append(
                &self.tx,
                &self.actor,
                "content.added",
                json!({ "bank": self.bank, "count": self.written, "first_id": self.first_id, "last_id": self.last_id }),
            )?;
        }
        crate::changes::record_content_added(&self.tx, &self.node, self.bank_id, &self.ids)?;
        self.tx.commit()?;
        Ok(self.written)
    }
}

/// A bank row before its thresholds are read.
struct BankRow {
    id: i64,
    name: String,
    description: String,
    labels: String,
    enabled: bool,
    created_at: String,
    enabled_ratio: f64,
    negative: bool,
}

impl BankRow {
    fn read(row: &Row<'_>) -> Result<BankRow, StoreError> {
        Ok(BankRow {
            id: row.get(0)?,
            name: row.get(1)?,
            description: row.get(2)?,
            labels: row.get(3)?,
            enabled: row.get(4)?,
            created_at: row.get(5)?,
            enabled_ratio: row.get(6)?,
            negative: row.get(7)?,
        })
    }

    fn into_bank(self, store: &Store) -> Result<Bank, StoreError> {
        let thresholds: BTreeMap<String, u32> = store
            .db
            .query_map(
                "SELECT signal_type, max_distance FROM bank_threshold WHERE bank_id = ?1",
                params![self.id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?
            .into_iter()
            .collect();
        Ok(Bank {
            id: self.id,
            name: bank_name_from_db(self.name)?,
            description: self.description,
            labels: labels_from_json(&self.labels)?,
            enabled: self.enabled,
            enabled_ratio: self.enabled_ratio,
            thresholds,
            created_at: self.created_at,
            negative: self.negative,
        })
    }
}

fn content_from_row(row: &Row<'_>) -> Result<Content, StoreError> {
    Ok(Content {
        id: row.get(0)?,
        bank: bank_name_from_db(row.get(1)?)?,
        external_id: row.get(2)?,
        labels: labels_from_json(&row.get::<String>(3)?)?,
        note: row.get(4)?,
        origin: row.get(5)?,
        created_at: row.get(6)?,
        disabled_until: row.get(7)?,
        metadata: serde_json::from_str(&row.get::<String>(10)?).map_err(|e| StoreError::Corrupt {
            what: "content metadata",
            detail: e.to_string(),
        })?,
        signals: Vec::new(),
    })
}
