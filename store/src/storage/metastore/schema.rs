//! The metastore's tables (applied by `didban_coord::migrate` as component `metastore`)
//! and a block's row.

use std::collections::HashMap;

use didban_coord::Migration;

/// Schema steps of the metastore, in order; never edit a released step, add one.
pub(crate) const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "blocks",
    sql: "CREATE TABLE didban_blocks (
            tenant text NOT NULL DEFAULT 'default',
            signal text NOT NULL,
            name text NOT NULL,
            min_time_ms bigint NOT NULL,
            max_time_ms bigint NOT NULL,
            level integer NOT NULL,
            series bigint NOT NULL,
            samples bigint NOT NULL,
            histogram_samples bigint NOT NULL DEFAULT 0,
            bytes bigint NOT NULL,
            file_names text[] NOT NULL,
            file_sizes bigint[] NOT NULL,
            published_by text NOT NULL,
            published_at timestamptz NOT NULL DEFAULT now(),
            deleted_at timestamptz,
            PRIMARY KEY (tenant, signal, name),
            CHECK (cardinality(file_names) = cardinality(file_sizes)),
            CHECK (min_time_ms <= max_time_ms));
          CREATE INDEX didban_blocks_live ON didban_blocks (tenant, signal, min_time_ms)
            WHERE deleted_at IS NULL",
}];

/// What the metastore says of one block: enough to open it without listing the bucket.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BlockRow {
    /// `<min>-<max>-<id>`, the block's prefix in the bucket.
    pub name: String,
    pub min_time_ms: i64,
    pub max_time_ms: i64,
    /// Compaction level (1 for a head cut).
    pub level: i32,
    pub series: i64,
    pub samples: i64,
    pub histogram_samples: i64,
    /// Bytes of all its files.
    pub bytes: i64,
    /// Each file and its size.
    pub files: HashMap<String, u64>,
}

impl BlockRow {
    /// The row of a row read with [`COLUMNS`].
    pub(crate) fn from_row(row: &didban_coord::Row) -> BlockRow {
        let names: Vec<String> = row.get(7);
        let sizes: Vec<i64> = row.get(8);
        let mut files = HashMap::new();
        for (name, size) in names.into_iter().zip(sizes) {
            files.insert(name, u64::try_from(size).unwrap_or(0));
        }
        BlockRow {
            name: row.get(0),
            min_time_ms: row.get(1),
            max_time_ms: row.get(2),
            level: row.get(3),
            series: row.get(4),
            samples: row.get(5),
            histogram_samples: row.get(6),
            bytes: row.get(9),
            files,
        }
    }
}

/// The columns [`BlockRow::from_row`] reads, in its order.
pub(crate) const COLUMNS: &str = "name, min_time_ms, max_time_ms, level, series, samples, \
    histogram_samples, file_names, file_sizes, bytes";
