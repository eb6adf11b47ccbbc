//! One SQL connection, to SQLite or PostgreSQL, behind one small interface, so that every
//! query of the store is written once.
//!
//! Queries use SQLite's numbered placeholders (`?1`, `?2`); for PostgreSQL they are
//! rewritten to `$1`, `$2`. Integers are 64-bit on both sides (PostgreSQL columns are
//! `BIGINT`, booleans included, stored as 0 or 1), text is text and bytes are bytes, so a
//! value reads back the same whichever backend holds it. Where the dialects differ (JSON
//! functions), the caller asks [`Db::dialect`] and picks its SQL.

use std::cell::RefCell;
use std::collections::HashMap;
use std::error::Error;

use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use crate::StoreError;

/// Which SQL a connection speaks, where the two differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A PostgreSQL connection and the statements prepared on it.
pub(crate) struct PgConnection {
    client: postgres::Client,
    statements: HashMap<String, postgres::Statement>,
}

impl PgConnection {
    pub(crate) fn new(client: postgres::Client) -> PgConnection {
        PgConnection {
            client,
            statements: HashMap::new(),
        }
    }

    /// The prepared form of `sql` (SQLite placeholders), prepared once per connection.
    fn statement(&mut self, sql: &str) -> Result<postgres::Statement, StoreError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(&postgres_placeholders(sql))?;
        self.statements.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }
}

/// A connection. Methods take `&self`: PostgreSQL's client needs `&mut`, so it sits in a
/// `RefCell` (a `Store` is used from one thread at a time).
pub(crate) enum Db {
    Sqlite(rusqlite::Connection),
    // Boxed: the client is much larger than a SQLite handle.
    Postgres(Box<RefCell<PgConnection>>),
}

/// A value bound to a placeholder.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Param<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

/// Anything that binds to a placeholder.
pub(crate) trait ToParam {
    fn to_param(&self) -> Param<'_>;
}

/// `params![a, b, c]`: the values of a query's placeholders, in order.
macro_rules! params {
    () => { &[] as &[&dyn $crate::db::ToParam] };
    ($($value:expr),+ $(,)?) => { &[$(&$value as &dyn $crate::db::ToParam),+] as &[&dyn $crate::db::ToParam] };
}
pub(crate) use params;

/// A column value as read back.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// Anything a column reads into.
pub(crate) trait FromValue: Sized {
    fn from_value(value: Value) -> Result<Self, String>;
}

/// One row of a result.
pub(crate) enum Row<'a> {
    Sqlite(&'a rusqlite::Row<'a>),
    Postgres(&'a postgres::Row),
}

impl Row<'_> {
    /// Column `index` (0-based), converted.
    pub(crate) fn get<T: FromValue>(&self, index: usize) -> Result<T, StoreError> {
        let value = match self {
            Row::Sqlite(row) => sqlite_value(row.get_ref(index)?),
            Row::Postgres(row) => postgres_value(row, index)?,
        };
        T::from_value(value).map_err(|detail| StoreError::Corrupt {
            what: "column",
            detail: format!("column {index}: {detail}"),
        })
    }
}

fn sqlite_value(value: rusqlite::types::ValueRef<'_>) -> Value {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(v) => Value::Int(v),
        ValueRef::Real(v) => Value::Real(v),
        ValueRef::Text(v) => Value::Text(String::from_utf8_lossy(v).into_owned()),
        ValueRef::Blob(v) => Value::Blob(v.to_vec()),
    }
}

fn postgres_value(row: &postgres::Row, index: usize) -> Result<Value, StoreError> {
    let column = row.columns().get(index).ok_or_else(|| StoreError::Corrupt {
        what: "column",
        detail: format!("no column {index}"),
    })?;
    let ty = column.type_().clone();
    let value = match ty {
        Type::INT8 => row.try_get::<_, Option<i64>>(index)?.map(Value::Int),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(index)?
            .map(|v| Value::Int(v.into())),
        Type::INT2 => row
            .try_get::<_, Option<i16>>(index)?
            .map(|v| Value::Int(v.into())),
        Type::BOOL => row
            .try_get::<_, Option<bool>>(index)?
            .map(|v| Value::Int(v.into())),
        Type::FLOAT8 => row.try_get::<_, Option<f64>>(index)?.map(Value::Real),
        Type::FLOAT4 => row
            .try_get::<_, Option<f32>>(index)?
            .map(|v| Value::Real(v.into())),
        Type::BYTEA => row.try_get::<_, Option<Vec<u8>>>(index)?.map(Value::Blob),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
            row.try_get::<_, Option<String>>(index)?.map(Value::Text)
        }
        other => {
            return Err(StoreError::Corrupt {
                what: "column",
                detail: format!("column {index} has unexpected type {other}"),
            });
        }
    };
    Ok(value.unwrap_or(Value::Null))
}

impl Db {
    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Db::Sqlite(_) => Dialect::Sqlite,
            Db::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Whether the server closed the connection (SQLite's never closes).
    pub(crate) fn is_closed(&self) -> bool {
        match self {
            Db::Sqlite(_) => false,
            Db::Postgres(conn) => conn.borrow().client.is_closed(),
        }
    }

    /// Runs a statement; answers how many rows it changed.
    pub(crate) fn execute(&self, sql: &str, params: &[&dyn ToParam]) -> Result<u64, StoreError> {
        match self {
            Db::Sqlite(conn) => {
                let changed = conn.prepare_cached(sql)?.execute(sqlite_params(params))?;
                Ok(changed as u64)
            }
            Db::Postgres(conn) => {
                let mut conn = conn.borrow_mut();
                let statement = conn.statement(sql)?;
                let values = postgres_params(params);
                let values: Vec<&(dyn ToSql + Sync)> =
                    values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
                Ok(conn.client.execute(&statement, &values)?)
            }
        }
    }

    /// Runs several statements without parameters (schema changes).
    pub(crate) fn execute_batch(&self, sql: &str) -> Result<(), StoreError> {
        match self {
            Db::Sqlite(conn) => Ok(conn.execute_batch(sql)?),
            Db::Postgres(conn) => Ok(conn.borrow_mut().client.batch_execute(sql)?),
        }
    }

    /// Calls `each` with every row of a query, in order, without holding them all.
    pub(crate) fn for_each<E: From<StoreError>>(
        &self,
        sql: &str,
        params: &[&dyn ToParam],
        mut each: impl FnMut(&Row<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        match self {
            Db::Sqlite(conn) => {
                let mut statement = conn.prepare_cached(sql).map_err(StoreError::from)?;
                let mut rows = statement.query(sqlite_params(params)).map_err(StoreError::from)?;
                while let Some(row) = rows.next().map_err(StoreError::from)? {
                    each(&Row::Sqlite(row))?;
                }
            }
            Db::Postgres(conn) => {
                let mut conn = conn.borrow_mut();
                let statement = conn.statement(sql)?;
                let mut rows = conn
                    .client
                    .query_raw(&statement, postgres_params(params))
                    .map_err(StoreError::from)?;
                while let Some(row) = rows.next().map_err(StoreError::from)? {
                    each(&Row::Postgres(&row))?;
                }
            }
        }
        Ok(())
    }

    /// Every row of a query, each read by `read`.
    pub(crate) fn query_map<T>(
        &self,
        sql: &str,
        params: &[&dyn ToParam],
        mut read: impl FnMut(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        self.for_each(sql, params, |row| {
            out.push(read(row)?);
            Ok::<_, StoreError>(())
        })?;
        Ok(out)
    }

    /// The first row of a query, if there is one.
    pub(crate) fn query_row<T>(
        &self,
        sql: &str,
        params: &[&dyn ToParam],
        read: impl FnOnce(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let mut read = Some(read);
        let mut found = None;
        self.for_each(sql, params, |row| {
            if let Some(read) = read.take() {
                found = Some(read(row)?);
            }
            Ok::<_, StoreError>(())
        })?;
        Ok(found)
    }

    /// One value that a query always yields (a count, say).
    pub(crate) fn query_value<T: FromValue>(
        &self,
        sql: &str,
        params: &[&dyn ToParam],
    ) -> Result<T, StoreError> {
        self.query_row(sql, params, |row| row.get(0))?
            .ok_or_else(|| StoreError::Corrupt {
                what: "query",
                detail: format!("no row from {sql}"),
            })
    }

    /// Runs an `INSERT … RETURNING id` and answers the id.
    pub(crate) fn insert(&self, sql: &str, params: &[&dyn ToParam]) -> Result<i64, StoreError> {
        self.query_value(sql, params)
    }

    /// Starts a write transaction; it rolls back when dropped uncommitted.
    ///
    /// On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`), waiting for another
    /// process's writer under the busy timeout. A plain `BEGIN` takes it only at the first
    /// write; a transaction that reads first (most do: does the bank exist?) then fails at
    /// once with "database is locked" if another process writes meanwhile, because SQLite
    /// never waits to turn a read into a write (what it read might be stale). Read-only
    /// snapshots do not come through here (see [`crate::Store::in_snapshot`]).
    pub(crate) fn transaction(&self) -> Result<Transaction<'_>, StoreError> {
        self.execute_batch(match self.dialect() {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        })?;
        Ok(Transaction {
            db: self,
            finished: false,
        })
    }
}

/// How a read inside a transaction locks the rows it reads (PostgreSQL), until the
/// transaction ends: what was read still holds when the transaction writes, and a row
/// deleted meanwhile is not read at all. A SQLite write transaction holds the whole database
/// already.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RowLock {
    /// For rows the transaction deletes, or whose keys it changes.
    Update,
    /// For rows the transaction changes otherwise: writers that only refer to the row (an
    /// insert of content into a bank) are not held up.
    NoKeyUpdate,
    /// For rows the transaction refers to (the bank content is added to): they are not
    /// deleted, nor their keys changed, until it ends.
    KeyShare,
}

impl Db {
    /// The clause that ends a `SELECT` locking its rows with `lock`.
    pub(crate) fn row_lock(&self, lock: RowLock) -> &'static str {
        match (self.dialect(), lock) {
            (Dialect::Sqlite, _) => "",
            (Dialect::Postgres, RowLock::Update) => " FOR UPDATE",
            (Dialect::Postgres, RowLock::NoKeyUpdate) => " FOR NO KEY UPDATE",
            (Dialect::Postgres, RowLock::KeyShare) => " FOR KEY SHARE",
        }
    }
}

/// Whether `error` is a UNIQUE constraint (or primary key) refusing a row, on either backend.
pub(crate) fn is_unique_violation(error: &StoreError) -> bool {
    match error {
        StoreError::Database(rusqlite::Error::SqliteFailure(failure, _)) => matches!(
            failure.extended_code,
            rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
        ),
        StoreError::Postgres(error) => error.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION),
        _ => false,
    }
}

/// A transaction on a [`Db`]: queries go through it as through the connection.
pub(crate) struct Transaction<'a> {
    db: &'a Db,
    finished: bool,
}

impl Transaction<'_> {
    pub(crate) fn commit(mut self) -> Result<(), StoreError> {
        self.finished = true;
        self.db.execute_batch("COMMIT")
    }
}

impl std::ops::Deref for Transaction<'_> {
    type Target = Db;

    fn deref(&self) -> &Db {
        self.db
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if !self.finished {
            // Nothing of it is kept; a failed rollback leaves the connection to be dropped
            // with the error that caused it.
            let _ = self.db.execute_batch("ROLLBACK");
        }
    }
}

fn sqlite_params<'a>(params: &'a [&'a dyn ToParam]) -> impl rusqlite::Params + 'a {
    rusqlite::params_from_iter(params.iter().map(|p| p.to_param()))
}

fn postgres_params<'a>(params: &'a [&'a dyn ToParam]) -> Vec<Param<'a>> {
    params.iter().map(|p| p.to_param()).collect()
}

/// `?1` → `$1`, outside quoted text.
fn postgres_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    for c in sql.chars() {
        if c == '\'' {
            quoted = !quoted;
        }
        out.push(if c == '?' && !quoted { '$' } else { c });
    }
    out
}

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match *self {
            Param::Null => ValueRef::Null,
            Param::Int(v) => ValueRef::Integer(v),
            Param::Real(v) => ValueRef::Real(v),
            Param::Text(v) => ValueRef::Text(v.as_bytes()),
            Param::Blob(v) => ValueRef::Blob(v),
        }))
    }
}

impl ToSql for Param<'_> {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match *self {
            Param::Null => Ok(IsNull::Yes),
            Param::Int(v) => match *ty {
                Type::INT4 => i32::try_from(v)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(v)?.to_sql(ty, out),
                Type::BOOL => (v != 0).to_sql(ty, out),
                Type::FLOAT8 => (v as f64).to_sql(ty, out),
                _ => v.to_sql(ty, out),
            },
            Param::Real(v) => v.to_sql(ty, out),
            Param::Text(v) => v.to_sql(ty, out),
            Param::Blob(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        // Checked per value in `to_sql`, where the column's type is known.
        true
    }

    to_sql_checked!();
}

impl ToParam for i64 {
    fn to_param(&self) -> Param<'_> {
        Param::Int(*self)
    }
}

macro_rules! int_param {
    ($($t:ty),*) => {$(
        impl ToParam for $t {
            fn to_param(&self) -> Param<'_> {
                // Counts and sizes beyond i64 do not occur; saturate rather than wrap.
                Param::Int(i64::try_from(*self).unwrap_or(i64::MAX))
            }
        }
    )*};
}
int_param!(i32, u8, u32, u64, usize);

impl ToParam for bool {
    fn to_param(&self) -> Param<'_> {
        Param::Int((*self).into())
    }
}

impl ToParam for f64 {
    fn to_param(&self) -> Param<'_> {
        Param::Real(*self)
    }
}

impl ToParam for str {
    fn to_param(&self) -> Param<'_> {
        Param::Text(self)
    }
}

impl ToParam for String {
    fn to_param(&self) -> Param<'_> {
        Param::Text(self)
    }
}

impl ToParam for [u8] {
    fn to_param(&self) -> Param<'_> {
        Param::Blob(self)
    }
}

impl ToParam for Vec<u8> {
    fn to_param(&self) -> Param<'_> {
        Param::Blob(self)
    }
}

impl<T: ToParam + ?Sized> ToParam for &T {
    fn to_param(&self) -> Param<'_> {
        (**self).to_param()
    }
}

impl<T: ToParam> ToParam for Option<T> {
    fn to_param(&self) -> Param<'_> {
        match self {
            Some(v) => v.to_param(),
            None => Param::Null,
        }
    }
}

impl FromValue for i64 {
    fn from_value(value: Value) -> Result<Self, String> {
        match value {
            Value::Int(v) => Ok(v),
            other => Err(format!("expected an integer, found {other:?}")),
        }
    }
}

macro_rules! int_value {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(value: Value) -> Result<Self, String> {
                let v = i64::from_value(value)?;
                <$t>::try_from(v).map_err(|_| format!("{v} is out of range"))
            }
        }
    )*};
}
int_value!(i32, u8, u32, u64, usize);

impl FromValue for bool {
    fn from_value(value: Value) -> Result<Self, String> {
        Ok(i64::from_value(value)? != 0)
    }
}

impl FromValue for f64 {
    fn from_value(value: Value) -> Result<Self, String> {
        match value {
            Value::Real(v) => Ok(v),
            Value::Int(v) => Ok(v as f64),
            other => Err(format!("expected a number, found {other:?}")),
        }
    }
}

impl FromValue for String {
    fn from_value(value: Value) -> Result<Self, String> {
        match value {
            Value::Text(v) => Ok(v),
            other => Err(format!("expected text, found {other:?}")),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(value: Value) -> Result<Self, String> {
        match value {
            Value::Blob(v) => Ok(v),
            other => Err(format!("expected bytes, found {other:?}")),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: Value) -> Result<Self, String> {
        match value {
            Value::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_rewritten_outside_quoted_text() {
        assert_eq!(
            postgres_placeholders("SELECT ?1, '?' FROM t WHERE a = ?2 AND b = 'it''s ?'"),
            "SELECT $1, '?' FROM t WHERE a = $2 AND b = 'it''s ?'"
        );
    }
}
