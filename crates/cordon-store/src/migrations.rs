//! Versioned schema migrations, one list for both backends. SQLite's `user_version` (in
//! PostgreSQL, the `schema_version` table) is the number of migrations applied; each runs
//! once, in order. A migration is never edited after it ships: changes are new migrations
//! appended to the list.
//!
//! A migration is written once, in SQLite's SQL, when both backends make the same change;
//! [`postgres_ddl`] turns it into PostgreSQL's by the few rules the schema needs (64-bit
//! integers, identity keys, `BYTEA`, and the append-only triggers as calls of one refusing
//! function). The rare change the backends make differently is written in each one's SQL.

use crate::StoreError;
use crate::db::{Db, Dialect, params};

/// One schema change.
enum Migration {
    /// The same change on both backends, written in SQLite's SQL ([`postgres_ddl`]
    /// translates it): most of them.
    Shared(&'static str),
    /// A change the backends make differently (their triggers, say), in each one's SQL.
    PerBackend {
        sqlite: &'static str,
        postgres: &'static str,
    },
}

use Migration::{PerBackend, Shared};

impl Migration {
    fn sqlite(&self) -> &'static str {
        match self {
            Shared(sql) | PerBackend { sqlite: sql, .. } => sql,
        }
    }

    fn postgres(&self) -> String {
        match self {
            Shared(sql) => postgres_ddl(sql),
            PerBackend { postgres, .. } => postgres.to_string(),
        }
    }
}

const MIGRATIONS: &[Migration] = &[
    // 1: banks, content and signals.
    Shared("
    CREATE TABLE bank (
        id          INTEGER PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        description TEXT NOT NULL DEFAULT '',
        labels      TEXT NOT NULL DEFAULT '[]',
        enabled     INTEGER NOT NULL DEFAULT 1,
        created_at  TEXT NOT NULL
    ) STRICT;
    CREATE TABLE bank_threshold (
        bank_id      INTEGER NOT NULL REFERENCES bank(id) ON DELETE CASCADE,
        signal_type  TEXT NOT NULL,
        max_distance INTEGER NOT NULL,
        PRIMARY KEY (bank_id, signal_type)
    ) STRICT;
    CREATE TABLE content (
        id             INTEGER PRIMARY KEY,
        bank_id        INTEGER NOT NULL REFERENCES bank(id) ON DELETE CASCADE,
        external_id    TEXT,
        labels         TEXT NOT NULL DEFAULT '[]',
        note           TEXT NOT NULL DEFAULT '',
        origin         TEXT NOT NULL DEFAULT '',
        created_at     TEXT NOT NULL,
        disabled_until TEXT
    ) STRICT;
    CREATE INDEX content_by_bank ON content(bank_id);
    -- bank_id repeats the content's bank so that loading an index is one table scan.
    CREATE TABLE signal (
        id          INTEGER PRIMARY KEY,
        content_id  INTEGER NOT NULL REFERENCES content(id) ON DELETE CASCADE,
        bank_id     INTEGER NOT NULL,
        signal_type TEXT NOT NULL,
        value       TEXT NOT NULL
    ) STRICT;
    CREATE INDEX signal_by_content ON signal(content_id);
    "),
    // 2: API keys; HMA's per-bank rollout ratio and per-content metadata.
    Shared("
    CREATE TABLE api_key (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        role        TEXT NOT NULL,
        secret_hash BLOB NOT NULL,
        created_at  TEXT NOT NULL,
        revoked_at  TEXT
    ) STRICT;
    ALTER TABLE bank ADD COLUMN enabled_ratio REAL NOT NULL DEFAULT 1.0;
    ALTER TABLE content ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}';
    "),
    // 3: the audit log, append-only.
    Shared("
    CREATE TABLE audit (
        seq    INTEGER PRIMARY KEY,
        at     TEXT NOT NULL,
        actor  TEXT NOT NULL,
        event  TEXT NOT NULL,
        data   TEXT NOT NULL,
        hash   BLOB NOT NULL
    ) STRICT;
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    "),
    // 4: submissions, their decisions, and the webhook outbox.
    Shared("
    CREATE TABLE submission (
        id          INTEGER PRIMARY KEY,
        content_id  TEXT NOT NULL UNIQUE,
        account_id  TEXT NOT NULL,
        source_url  TEXT,
        posted_at   TEXT,
        metadata    TEXT NOT NULL DEFAULT '{}',
        received_at TEXT NOT NULL,
        sha256      TEXT NOT NULL,
        size        INTEGER NOT NULL,
        response    TEXT NOT NULL
    ) STRICT;
    CREATE TABLE decision (
        id            INTEGER PRIMARY KEY,
        submission_id INTEGER NOT NULL REFERENCES submission(id),
        action        TEXT NOT NULL,
        rule          TEXT NOT NULL,
        reason        TEXT NOT NULL,
        actor         TEXT NOT NULL,
        created_at    TEXT NOT NULL
    ) STRICT;
    CREATE TABLE outbox (
        id              INTEGER PRIMARY KEY,
        decision_id     INTEGER NOT NULL REFERENCES decision(id),
        webhook         TEXT NOT NULL,
        payload         TEXT NOT NULL,
        idempotency_key TEXT NOT NULL UNIQUE,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        delivered_at    TEXT,
        last_error      TEXT
    ) STRICT;
    CREATE INDEX outbox_due ON outbox(delivered_at, next_attempt_at);
    "),
    // 5: accounts and their strikes.
    Shared("
    CREATE TABLE account (
        id         TEXT PRIMARY KEY,
        state      TEXT NOT NULL DEFAULT 'active',
        reason     TEXT,
        updated_at TEXT NOT NULL
    ) STRICT;
    CREATE TABLE strike (
        id          INTEGER PRIMARY KEY,
        account_id  TEXT NOT NULL,
        decision_id INTEGER NOT NULL REFERENCES decision(id),
        weight      INTEGER NOT NULL,
        created_at  TEXT NOT NULL,
        expires_at  TEXT NOT NULL
    ) STRICT;
    CREATE INDEX strike_by_account ON strike(account_id, expires_at);
    "),
    // 6: the ledger of sightings, append-only; submissions made before it are its first
    // rows (without signals: those were not kept).
    Shared("
    CREATE TABLE sighting (
        id            INTEGER PRIMARY KEY,
        submission_id INTEGER REFERENCES submission(id),
        bank          TEXT,
        bank_content  INTEGER,
        received_at   TEXT NOT NULL,
        posted_at     TEXT,
        source_url    TEXT,
        account_id    TEXT,
        sha256        TEXT,
        size          INTEGER,
        format        TEXT,
        width         INTEGER,
        height        INTEGER,
        pdq           TEXT,
        quality       INTEGER,
        evidence      TEXT NOT NULL DEFAULT '{}'
    ) STRICT;
    CREATE INDEX sighting_by_submission ON sighting(submission_id);
    INSERT INTO sighting (submission_id, received_at, posted_at, source_url, account_id, sha256, size)
        SELECT id, received_at, posted_at, source_url, account_id, sha256, size FROM submission;
    CREATE TRIGGER sighting_is_append_only_update BEFORE UPDATE ON sighting
        BEGIN SELECT RAISE(ABORT, 'the ledger of sightings is append-only'); END;
    CREATE TRIGGER sighting_is_append_only_delete BEFORE DELETE ON sighting
        BEGIN SELECT RAISE(ABORT, 'the ledger of sightings is append-only'); END;
    "),
    // 7: false-positive defences: negative banks, and the flood guard's hit counts and
    // quarantined entries.
    Shared("
    ALTER TABLE bank ADD COLUMN negative INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE content_hits (
        content_id   INTEGER NOT NULL REFERENCES content(id) ON DELETE CASCADE,
        window_start TEXT NOT NULL,
        hits         INTEGER NOT NULL,
        PRIMARY KEY (content_id, window_start)
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE quarantine (
        content_id  INTEGER PRIMARY KEY REFERENCES content(id) ON DELETE CASCADE,
        bank        TEXT NOT NULL,
        since       TEXT NOT NULL,
        reason      TEXT NOT NULL,
        released_at TEXT,
        released_by TEXT
    ) STRICT;
    "),
    // 8: provenance through the banks: a bank content's sightings, found by its id.
    Shared("
    CREATE INDEX sighting_by_bank_content ON sighting(bank_content) WHERE bank_content IS NOT NULL;
    "),
    // 9: the review console: the queue, the media people look at, sessions, reviewers'
    // settings and how much they saw, appeals.
    Shared("
    CREATE TABLE review_item (
        submission_id    INTEGER PRIMARY KEY REFERENCES submission(id),
        state            TEXT NOT NULL DEFAULT 'pending',
        severity         INTEGER NOT NULL,
        distance         INTEGER NOT NULL,
        signal_type      TEXT NOT NULL,
        account_strikes  INTEGER NOT NULL,
        banks            TEXT NOT NULL,
        labels           TEXT NOT NULL,
        rule             TEXT NOT NULL,
        reason           TEXT NOT NULL,
        created_at       TEXT NOT NULL,
        claimed_by       TEXT,
        claim_expires_at TEXT,
        decided_by       TEXT,
        decided_at       TEXT,
        outcome          TEXT
    ) STRICT;
    CREATE INDEX review_queue ON review_item(state, severity DESC, distance, account_strikes DESC, created_at);
    CREATE TABLE stored_media (
        id            INTEGER PRIMARY KEY,
        submission_id INTEGER UNIQUE REFERENCES submission(id),
        content_id    INTEGER UNIQUE REFERENCES content(id) ON DELETE CASCADE,
        mime          TEXT NOT NULL,
        bytes         BLOB NOT NULL,
        created_at    TEXT NOT NULL
    ) STRICT;
    CREATE TABLE console_session (
        token_hash BLOB PRIMARY KEY,
        reviewer   TEXT NOT NULL,
        role       TEXT NOT NULL,
        csrf       TEXT NOT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL
    ) STRICT;
    CREATE TABLE reviewer_settings (
        reviewer  TEXT PRIMARY KEY,
        blur      INTEGER NOT NULL,
        greyscale INTEGER NOT NULL,
        autoplay  INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE reviewer_reveals (
        reviewer TEXT NOT NULL,
        day      TEXT NOT NULL,
        reveals  INTEGER NOT NULL,
        PRIMARY KEY (reviewer, day)
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE appeal (
        id         INTEGER PRIMARY KEY,
        account_id TEXT NOT NULL,
        reason     TEXT NOT NULL,
        state      TEXT NOT NULL DEFAULT 'pending',
        created_at TEXT NOT NULL,
        decided_by TEXT,
        decided_at TEXT,
        note       TEXT
    ) STRICT;
    "),
    // 10: the change feed other processes follow to keep their indexes live.
    Shared("
    CREATE TABLE change_log (
        seq        INTEGER PRIMARY KEY,
        at         TEXT NOT NULL,
        node       TEXT NOT NULL,
        kind       TEXT NOT NULL,
        bank_id    INTEGER,
        content_id INTEGER,
        detail     TEXT NOT NULL DEFAULT '{}'
    ) STRICT;
    "),
    // 11: the append-only logs also refuse what their row triggers miss. PostgreSQL's
    // TRUNCATE fires no row trigger; SQLite's INSERT OR REPLACE removes the row it replaces
    // without firing its delete trigger (unless `recursive_triggers` is on: a setting of
    // each connection, and whoever tampers uses their own), so an insert over an existing
    // key is refused before it happens.
    PerBackend {
        sqlite: "
    CREATE TRIGGER audit_no_replace BEFORE INSERT ON audit
        WHEN EXISTS (SELECT 1 FROM audit WHERE seq = NEW.seq)
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER sighting_is_append_only_replace BEFORE INSERT ON sighting
        WHEN EXISTS (SELECT 1 FROM sighting WHERE id = NEW.id)
        BEGIN SELECT RAISE(ABORT, 'the ledger of sightings is append-only'); END;
    ",
        postgres: "
    CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit FOR EACH STATEMENT
        EXECUTE FUNCTION cordon_refuse_change('the audit log is append-only');
    CREATE TRIGGER sighting_is_append_only_truncate BEFORE TRUNCATE ON sighting FOR EACH STATEMENT
        EXECUTE FUNCTION cordon_refuse_change('the ledger of sightings is append-only');
    ",
    },
    // 12: a content id is never given again once its content is deleted: the audit log,
    // the ledger's sightings, review items and clients keep naming it. PostgreSQL's
    // identity never goes back; SQLite gives the largest id in the table plus one, which
    // after deleting the newest content is that content's id. The floor remembers the
    // ids handed out (seeded past every id still referenced) and inserts start above it.
    PerBackend {
        sqlite: "
    CREATE TABLE content_id_floor (next INTEGER NOT NULL) STRICT;
    INSERT INTO content_id_floor (next) SELECT max(
        coalesce((SELECT max(id) FROM content), 0),
        coalesce((SELECT max(bank_content) FROM sighting), 0),
        coalesce((SELECT max(content_id) FROM change_log WHERE kind LIKE 'content.%'), 0)
    ) + 1;
    CREATE TRIGGER content_ids_are_never_given_again AFTER DELETE ON content
        BEGIN UPDATE content_id_floor SET next = max(next, OLD.id + 1); END;
    ",
        postgres: "SELECT 1;",
    },
    // 13: one pending appeal per account, held by the database: on PostgreSQL two appeals
    // filed at once both passed the check before the insert. The duplicates that left are
    // closed first (the account's oldest pending appeal stays), as refused when filed.
    Shared("
    UPDATE appeal SET state = 'rejected', decided_by = 'cordon', decided_at = created_at,
        note = 'a duplicate: filed while another appeal of the account was pending'
    WHERE state = 'pending' AND EXISTS (
        SELECT 1 FROM appeal older
        WHERE older.account_id = appeal.account_id AND older.state = 'pending' AND older.id < appeal.id
    );
    CREATE UNIQUE INDEX appeal_one_pending ON appeal(account_id) WHERE state = 'pending';
    "),
];

/// Brings the database up to the newest schema.
pub(crate) fn migrate(db: &Db, path: &str) -> Result<(), StoreError> {
    match db.dialect() {
        Dialect::Sqlite => migrate_sqlite(db, path),
        Dialect::Postgres => migrate_postgres(db, path),
    }
}

fn check_version(applied: i64, path: &str) -> Result<(), StoreError> {
    let supported = MIGRATIONS.len() as i64;
    if applied > supported {
        return Err(StoreError::SchemaTooNew {
            path: path.to_string(),
            found: applied,
            supported,
        });
    }
    Ok(())
}

fn migrate_sqlite(db: &Db, path: &str) -> Result<(), StoreError> {
    // Up to date (nearly every open): done, without waiting for the write lock.
    let applied: i64 = db.query_value("PRAGMA user_version", params![])?;
    check_version(applied, path)?;
    if applied == MIGRATIONS.len() as i64 {
        return Ok(());
    }
    // Other processes may be opening the new or older store at the same moment (a server
    // and a command started together): each migration runs in a write transaction that
    // reads the version again, once it holds the lock, so that each runs once.
    loop {
        let tx = db.transaction()?;
        let applied: i64 = tx.query_value("PRAGMA user_version", params![])?;
        check_version(applied, path)?;
        let next = usize::try_from(applied).map_err(|_| StoreError::Corrupt {
            what: "schema version",
            detail: format!("user_version {applied} in {path}"),
        })?;
        let Some(migration) = MIGRATIONS.get(next) else {
            return Ok(());
        };
        tx.execute_batch(migration.sqlite())?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", next + 1))?;
        tx.commit()?;
    }
}

/// Any number for the advisory lock that serialises migrations, as long as it stays the same.
const MIGRATION_LOCK: i64 = 0x0063_6f72_646f_6e01;

/// What the PostgreSQL schema needs before any migration: the version row, and the function
/// the append-only triggers call.
const POSTGRES_PRELUDE: &str = "
    CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL);
    INSERT INTO schema_version (version) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM schema_version);
    CREATE OR REPLACE FUNCTION cordon_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION '%', TG_ARGV[0]; END $$;
";

fn migrate_postgres(db: &Db, path: &str) -> Result<(), StoreError> {
    let tx = db.transaction()?;
    // Nodes starting together: one migrates, the others wait here and find it done.
    tx.execute("SELECT pg_advisory_xact_lock(?1)", params![MIGRATION_LOCK])?;
    tx.execute_batch(POSTGRES_PRELUDE)?;
    let applied: i64 = tx.query_value("SELECT version FROM schema_version", params![])?;
    check_version(applied, path)?;
    for migration in MIGRATIONS.iter().skip(applied as usize) {
        tx.execute_batch(&migration.postgres())?;
    }
    tx.execute(
        "UPDATE schema_version SET version = ?1",
        params![MIGRATIONS.len() as i64],
    )?;
    tx.commit()
}

/// A migration in SQLite's SQL as PostgreSQL's.
fn postgres_ddl(sql: &str) -> String {
    let mut out = sql
        .replace("INTEGER PRIMARY KEY REFERENCES", "BIGINT PRIMARY KEY REFERENCES")
        .replace(
            "INTEGER PRIMARY KEY",
            "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
        )
        .replace("INTEGER", "BIGINT")
        .replace(" REAL ", " DOUBLE PRECISION ")
        .replace("BLOB", "BYTEA")
        .replace(") STRICT, WITHOUT ROWID;", ");")
        .replace(") STRICT;", ");");
    // `CREATE TRIGGER t BEFORE UPDATE ON x BEGIN SELECT RAISE(ABORT, 'why'); END;`
    let mut from = 0;
    while let Some(found) = out[from..].find("CREATE TRIGGER") {
        let start = from + found;
        let Some(length) = out[start..].find("END;") else {
            break;
        };
        let end = start + length + "END;".len();
        let trigger = &out[start..end];
        let words: Vec<&str> = trigger.split_whitespace().collect();
        let why = trigger.split('\'').nth(1).unwrap_or("not allowed");
        let replacement = match words.as_slice() {
            ["CREATE", "TRIGGER", name, "BEFORE", event, "ON", table, ..] => format!(
                "CREATE TRIGGER {name} BEFORE {event} ON {table} FOR EACH ROW \
                 EXECUTE FUNCTION cordon_refuse_change('{why}');"
            ),
            _ => break,
        };
        out.replace_range(start..end, &replacement);
        from = start + replacement.len();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_ddl_translates_types_keys_and_triggers() {
        let ddl = MIGRATIONS[2].postgres();
        assert!(
            ddl.contains("seq    BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
            "{ddl}"
        );
        assert!(ddl.contains("hash   BYTEA NOT NULL\n    );"), "{ddl}");
        assert!(
            ddl.contains(
                "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit FOR EACH ROW \
                 EXECUTE FUNCTION cordon_refuse_change('the audit log is append-only');"
            ),
            "{ddl}"
        );
        assert!(
            ddl.contains("CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit FOR EACH ROW"),
            "{ddl}"
        );
        let all: String = MIGRATIONS.iter().map(Migration::postgres).collect();
        // UPDATE and DELETE of each log, row by row; TRUNCATE of each, by statement.
        assert_eq!(
            all.matches("EXECUTE FUNCTION cordon_refuse_change").count(),
            6,
            "{all}"
        );
        assert_eq!(all.matches("BEFORE TRUNCATE").count(), 2, "{all}");
        assert_eq!(all.matches("FOR EACH STATEMENT").count(), 2, "{all}");
        let sqlite: String = MIGRATIONS.iter().map(Migration::sqlite).collect();
        // UPDATE, DELETE and an insert over an existing key, of each log.
        assert_eq!(sqlite.matches("RAISE(ABORT").count(), 6, "{sqlite}");
        assert_eq!(sqlite.matches("BEFORE INSERT").count(), 2, "{sqlite}");
        for postgres_only in ["TRUNCATE", "EXECUTE FUNCTION", "BIGINT", "BYTEA"] {
            assert!(
                !sqlite.contains(postgres_only),
                "{postgres_only} in the SQLite schema"
            );
        }
        for sqlite_only in ["STRICT", "ROWID", "RAISE(", "INTEGER", "BLOB", " REAL "] {
            assert!(
                !all.contains(sqlite_only),
                "{sqlite_only} left in the PostgreSQL schema"
            );
        }
    }
}
