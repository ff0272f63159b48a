//! Raises the open-file limit (`RLIMIT_NOFILE`) to the hard limit at start: every connection,
//! WAL segment, block and log index holds a descriptor, and the usual soft limit of 1024 is
//! what a few hundred stalled clients exhausted (`EMFILE`) in issue 13.

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// Used when the hard limit is "unlimited": Linux refuses a soft limit above `fs.nr_open`,
/// whose default is this.
const UNLIMITED_CAP: u64 = 1 << 20;

/// Sets the soft open-file limit to the hard limit; returns the limit now in force (`None`
/// when it is unlimited). Lowering never happens.
pub fn raise_nofile_limit() -> std::io::Result<Option<u64>> {
    let limit = getrlimit(Resource::Nofile);
    let target = limit.maximum.unwrap_or(UNLIMITED_CAP);
    match limit.current {
        Some(current) if current < target => {
            setrlimit(
                Resource::Nofile,
                Rlimit {
                    current: Some(target),
                    maximum: limit.maximum,
                },
            )?;
            Ok(Some(target))
        }
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn soft_limit_reaches_the_hard_limit() {
        let now = raise_nofile_limit().unwrap();
        let limit = getrlimit(Resource::Nofile);
        assert_eq!(limit.current, now);
        if let (Some(cur), Some(max)) = (limit.current, limit.maximum) {
            assert_eq!(cur, max);
        }
    }
}
