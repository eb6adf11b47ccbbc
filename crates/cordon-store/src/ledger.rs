//! The ledger of sightings: every upload and every piece of bank content made from media,
//! when it was received, what the platform said of it (claimed time, source, account),
//! the file's digest, size and format, its PDQ hash and the evidence read from it (EXIF).
//! Append-only (triggers refuse changes), so that "first seen" can be trusted; a sighting
//! outlives the media, which Cordon does not keep.

use crate::db::{Db, Row, params};
use serde::Serialize;

use crate::sqlite::Store;
use crate::{StoreError, now_rfc3339};

/// What Cordon learnt from the file itself.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MediaFacts {
    pub sha256: Option<String>,
    pub size: Option<u64>,
    pub format: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub pdq: Option<String>,
    pub quality: Option<u8>,
    /// Evidence read from the file (EXIF), a JSON object.
    pub evidence: serde_json::Value,
}

/// One row of the ledger.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sighting {
    pub id: i64,
    /// `submission` or `bank`.
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submission_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bank: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bank_content_id: Option<i64>,
    pub received_at: String,
    pub posted_at: Option<String>,
    pub source_url: Option<String>,
    pub account_id: Option<String>,
    /// What the file showed (all `None` for sightings recorded before the ledger kept them).
    #[serde(flatten)]
    pub media: MediaFacts,
}

const COLUMNS: &str = "id, submission_id, bank, bank_content, received_at, posted_at, source_url, account_id,
                       sha256, size, format, width, height, pdq, quality, evidence";

/// Sighting ids read in one statement by [`Store::sightings`]: few enough to keep the
/// statement a few kilobytes, many enough that round trips no longer count.
const IDS_PER_QUERY: usize = 500;

fn sighting(row: &Row<'_>) -> Result<Sighting, StoreError> {
    let submission_id: Option<i64> = row.get(1)?;
    let evidence: String = row.get(15)?;
    Ok(Sighting {
        id: row.get(0)?,
        kind: if submission_id.is_some() {
            "submission"
        } else {
            "bank"
        },
        submission_id,
        bank: row.get(2)?,
        bank_content_id: row.get(3)?,
        received_at: row.get(4)?,
        posted_at: row.get(5)?,
        source_url: row.get(6)?,
        account_id: row.get(7)?,
        media: MediaFacts {
            sha256: row.get(8)?,
            size: row.get::<Option<i64>>(9)?.map(|n| n as u64),
            format: row.get(10)?,
            width: row.get(11)?,
            height: row.get(12)?,
            pdq: row.get(13)?,
            quality: row.get(14)?,
            evidence: serde_json::from_str(&evidence).unwrap_or_else(|_| serde_json::json!({})),
        },
    })
}

/// Who and where a sighting came from, beside the file's own facts.
#[derive(Clone, Debug, Default)]
pub(crate) struct SightingOrigin<'a> {
    pub submission_id: Option<i64>,
    pub bank: Option<&'a str>,
    pub bank_content: Option<i64>,
    pub posted_at: Option<&'a str>,
    pub source_url: Option<&'a str>,
    pub account_id: Option<&'a str>,
}

/// Appends a sighting inside the caller's transaction; returns its id.
pub(crate) fn append(
    conn: &Db,
    node: &str,
    origin: &SightingOrigin<'_>,
    facts: &MediaFacts,
) -> Result<i64, StoreError> {
    let evidence = if facts.evidence.is_object() {
        facts.evidence.to_string()
    } else {
        "{}".to_string()
    };
    let id = conn.insert(
        "INSERT INTO sighting (submission_id, bank, bank_content, received_at, posted_at, source_url,
                               account_id, sha256, size, format, width, height, pdq, quality, evidence)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) RETURNING id",
        params![
            origin.submission_id,
            origin.bank,
            origin.bank_content,
            now_rfc3339(),
            origin.posted_at,
            origin.source_url,
            origin.account_id,
            facts.sha256,
            facts.size.map(|n| n as i64),
            facts.format,
            facts.width,
            facts.height,
            facts.pdq,
            facts.quality,
            evidence
        ],
    )?;
    let detail = serde_json::json!({ "pdq": facts.pdq, "quality": facts.quality });
    crate::changes::record(conn, node, "sighting.added", None, Some(id), detail)?;
    Ok(id)
}

impl Store {
    /// The sightings with these ids, each once, oldest first.
    ///
    /// Read `IDS_PER_QUERY` at a time: a picture that went viral has many thousands of
    /// sightings, and one statement per id made a provenance answer wait on as many round
    /// trips to PostgreSQL.
    pub fn sightings(&self, ids: &[i64]) -> Result<Vec<Sighting>, StoreError> {
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(IDS_PER_QUERY) {
            // Ids are numbers: written into the statement.
            let list: Vec<String> = chunk.iter().map(i64::to_string).collect();
            let sql = format!("SELECT {COLUMNS} FROM sighting WHERE id IN ({})", list.join(", "));
            found.extend(self.db().query_map(&sql, params![], sighting)?);
        }
        found.sort_by(|a, b| (&a.received_at, a.id).cmp(&(&b.received_at, b.id)));
        found.dedup_by_key(|s| s.id);
        Ok(found)
    }

    /// The sighting of a submission.
    pub fn sighting_of_submission(&self, submission_id: i64) -> Result<Option<Sighting>, StoreError> {
        self.db().query_row(
            &format!("SELECT {COLUMNS} FROM sighting WHERE submission_id = ?1"),
            params![submission_id],
            sighting,
        )
    }

    /// The sightings of a bank's content (made when it was added from media).
    pub fn sightings_of_bank_content(&self, content_id: i64) -> Result<Vec<Sighting>, StoreError> {
        self.db().query_map(
            &format!("SELECT {COLUMNS} FROM sighting WHERE bank_content = ?1 ORDER BY id"),
            params![content_id],
            sighting,
        )
    }

    /// Calls `f` with the id, PDQ hash and its quality (if recorded) of every sighting
    /// that has a hash, in id order.
    pub fn for_each_sighting_pdq(&self, mut f: impl FnMut(i64, &str, Option<u8>)) -> Result<(), StoreError> {
        self.db().for_each(
            "SELECT id, pdq, quality FROM sighting WHERE pdq IS NOT NULL ORDER BY id",
            params![],
            |row| {
                let pdq: String = row.get(1)?;
                f(row.get(0)?, &pdq, row.get(2)?);
                Ok::<_, StoreError>(())
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ledger_keeps_what_it_is_given_and_refuses_changes() {
        let mut store = Store::open_in_memory().unwrap();
        let bank = crate::BankName::new("TVEC").unwrap();
        store.create_bank(&bank, crate::NewBank::default()).unwrap();
        let facts = MediaFacts {
            sha256: Some("ab".repeat(32)),
            size: Some(1234),
            format: Some("jpeg".to_string()),
            pdq: Some("f".repeat(64)),
            quality: Some(100),
            evidence: serde_json::json!({ "exif": { "make": "samsung" } }),
            ..MediaFacts::default()
        };
        let mut writer = store.content_writer("TVEC").unwrap();
        let id = writer.record_sighting(7, &facts).unwrap();
        writer.commit().unwrap();
        let found = store.sightings(&[id, 999]).unwrap();
        assert_eq!(found.len(), 1);
        let sighting = &found[0];
        assert_eq!(
            (sighting.kind, sighting.bank.as_deref(), sighting.bank_content_id),
            ("bank", Some("TVEC"), Some(7))
        );
        assert_eq!(sighting.media.evidence["exif"]["make"], "samsung");
        let mut seen = Vec::new();
        store
            .for_each_sighting_pdq(|id, pdq, quality| seen.push((id, pdq.to_string(), quality)))
            .unwrap();
        assert_eq!(seen, vec![(id, "f".repeat(64), Some(100))]);
        let replace = format!("INSERT OR REPLACE INTO sighting (id, received_at) VALUES ({id}, 'x')");
        for change in [
            "UPDATE sighting SET account_id = 'x'",
            "DELETE FROM sighting",
            &replace,
        ] {
            let error = store.db().execute(change, params![]).unwrap_err();
            assert!(error.to_string().contains("append-only"), "{change}: {error}");
        }
    }
}
