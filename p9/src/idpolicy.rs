//! A share's identity policy ([`SharePolicy`]): read-only or not, and the uid and gid maps
//! built from the values of a device's backend keys (`uid-map`, `gid-map`, `squash-root`,
//! `unmapped-ids`, see [`PolicyKeys`]). The Xen backend reads the keys when a device connects
//! and whenever one changes; `pvfs share add/set` validates what it writes with the same
//! parser. Values are bounded ([`MAX_VALUE_LEN`], [`MAX_RANGES`]), ranges are checked for
//! overflow and overlap, and nothing here panics on any input.
//!
//! Key values:
//! - `uid-map` / `gid-map`: `identity` (the default), `all:ID` (every guest id becomes host
//!   `ID`), or ranges `GUEST:HOST:COUNT[,GUEST:HOST:COUNT…]` (guest ids `GUEST..GUEST+COUNT`
//!   are host ids `HOST..HOST+COUNT`, both ways).
//! - `squash-root`: `UID:GID`: guest uid 0 and gid 0 become these host ids (before the maps).
//! - `unmapped-ids`: `UID:GID`: the host ids of guest ids that no range covers (default
//!   65534:65534).
//!
//! A host id that no range covers is shown to the guest as 65534 (Linux's overflow id): an id
//! outside every range is squashed both ways, never passed through.

use crate::policy::{IdMap, IdRule, NOBODY};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// Longest key value accepted.
pub const MAX_VALUE_LEN: usize = 1024;
/// Most ranges in one map.
pub const MAX_RANGES: usize = 32;
/// The key names, in a device's backend directory.
pub const POLICY_KEYS: [&str; 4] = ["uid-map", "gid-map", "squash-root", "unmapped-ids"];

/// One `GUEST:HOST:COUNT` range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// First guest id.
    pub guest: u32,
    /// First host id.
    pub host: u32,
    /// Number of ids, 1 to 2^32.
    pub count: u64,
}

/// A parsed `uid-map` or `gid-map` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapSpec {
    /// Every id is itself.
    Identity,
    /// Every guest id becomes this host id.
    All(u32),
    /// Disjoint ranges.
    Ranges(Vec<Range>),
}

fn num(s: &str, what: &str) -> Result<u64, String> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{what} {s:?} is not a number"));
    }
    s.parse::<u64>()
        .map_err(|_| format!("{what} {s:?} is not a number"))
}

fn id(s: &str, what: &str) -> Result<u32, String> {
    let n = num(s, what)?;
    u32::try_from(n).map_err(|_| format!("{what} {n} is above 4294967295"))
}

fn bounded(s: &str) -> Result<&str, String> {
    if s.len() > MAX_VALUE_LEN {
        return Err(format!("longer than {MAX_VALUE_LEN} bytes"));
    }
    Ok(s.trim())
}

/// Whether `a` and `b` (start, count) overlap.
fn overlap(a: (u32, u64), b: (u32, u64)) -> bool {
    let (a0, b0) = (u64::from(a.0), u64::from(b.0));
    a0 < b0 + b.1 && b0 < a0 + a.1
}

/// Parses a `uid-map`/`gid-map` value.
pub fn parse_map(s: &str) -> Result<MapSpec, String> {
    let s = bounded(s)?;
    if s == "identity" {
        return Ok(MapSpec::Identity);
    }
    if let Some(h) = s.strip_prefix("all:") {
        return Ok(MapSpec::All(id(h, "id")?));
    }
    let mut ranges: Vec<Range> = Vec::new();
    for part in s.split(',') {
        if ranges.len() >= MAX_RANGES {
            return Err(format!("more than {MAX_RANGES} ranges"));
        }
        let f: Vec<&str> = part.trim().splitn(4, ':').collect();
        let [g, h, c] = f[..] else {
            return Err(format!(
                "{part:?} is not GUEST:HOST:COUNT, identity or all:ID"
            ));
        };
        let r = Range {
            guest: id(g, "guest id")?,
            host: id(h, "host id")?,
            count: num(c, "count")?,
        };
        if r.count == 0 {
            return Err(format!("{part:?}: the count is 0"));
        }
        let top = 1u64 << 32;
        if u64::from(r.guest) + r.count > top || u64::from(r.host) + r.count > top {
            return Err(format!("{part:?}: the range goes past 4294967295"));
        }
        for o in &ranges {
            if overlap((o.guest, o.count), (r.guest, r.count)) {
                return Err(format!("{part:?}: guest ids overlap another range"));
            }
            if overlap((o.host, o.count), (r.host, r.count)) {
                return Err(format!("{part:?}: host ids overlap another range"));
            }
        }
        ranges.push(r);
    }
    Ok(MapSpec::Ranges(ranges))
}

/// Parses a `squash-root` or `unmapped-ids` value: `UID:GID`.
pub fn parse_pair(s: &str) -> Result<(u32, u32), String> {
    let s = bounded(s)?;
    match s.split_once(':') {
        Some((u, g)) => Ok((id(u, "uid")?, id(g, "gid")?)),
        None => Err(format!("{s:?} is not UID:GID")),
    }
}

/// The values of a device's policy keys ([`POLICY_KEYS`]); `None` is a missing key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyKeys {
    /// `uid-map`.
    pub uid_map: Option<String>,
    /// `gid-map`.
    pub gid_map: Option<String>,
    /// `squash-root`.
    pub squash_root: Option<String>,
    /// `unmapped-ids`.
    pub unmapped_ids: Option<String>,
}

fn build(spec: MapSpec, squash_root: Option<u32>, unmapped: u32) -> IdMap {
    let mut rules = Vec::new();
    if let Some(h) = squash_root {
        rules.push(IdRule::Squash {
            guest: 0,
            host: h,
            count: 1,
        });
    }
    match spec {
        MapSpec::Identity => rules.push(IdRule::Map {
            guest: 0,
            host: 0,
            count: 1 << 32,
        }),
        MapSpec::All(h) => rules.push(IdRule::Squash {
            guest: 0,
            host: h,
            count: 1 << 32,
        }),
        MapSpec::Ranges(rs) => rules.extend(rs.into_iter().map(|r| IdRule::Map {
            guest: r.guest,
            host: r.host,
            count: r.count,
        })),
    }
    IdMap {
        rules,
        unmapped_host: unmapped,
        unmapped_guest: NOBODY,
    }
}

impl PolicyKeys {
    /// The uid and gid maps these keys describe, or what is wrong with them (the key named).
    pub fn maps(&self) -> Result<(IdMap, IdMap), String> {
        let key = |k: &str, r: Result<MapSpec, String>| r.map_err(|e| format!("{k}: {e}"));
        let spec = |v: &Option<String>, k: &str| match v {
            None => Ok(MapSpec::Identity),
            Some(v) => key(k, parse_map(v)),
        };
        let pair = |v: &Option<String>, k: &str| match v.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(v) => parse_pair(v).map(Some).map_err(|e| format!("{k}: {e}")),
        };
        let uid = spec(&self.uid_map, "uid-map")?;
        let gid = spec(&self.gid_map, "gid-map")?;
        let root = pair(&self.squash_root, "squash-root")?;
        let (nu, ng) = pair(&self.unmapped_ids, "unmapped-ids")?.unwrap_or((NOBODY, NOBODY));
        Ok((
            build(uid, root.map(|r| r.0), nu),
            build(gid, root.map(|r| r.1), ng),
        ))
    }

    /// The share's policy: these keys' maps, read-only or not (the `mode` key).
    pub fn policy(&self, read_only: bool) -> Result<SharePolicy, String> {
        let (uid_map, gid_map) = self.maps()?;
        Ok(SharePolicy {
            read_only,
            uid_map,
            gid_map,
        })
    }
}

impl IdMap {
    /// The rule that decides guest id `g` (first match), if any.
    fn rule_for(&self, g: u32) -> Option<&IdRule> {
        self.rules.iter().find(|r| match **r {
            IdRule::Map { guest, count, .. } | IdRule::Squash { guest, count, .. } => {
                g >= guest && u64::from(g - guest) < count
            }
        })
    }

    /// Whether guest id `g` is mapped by a range (not squashed, not unmapped).
    pub fn maps_guest(&self, g: u32) -> bool {
        matches!(self.rule_for(g), Some(IdRule::Map { .. }))
    }

    /// Whether host id `h` is inside a range, i.e. has a guest id of its own.
    pub fn covers_host(&self, h: u32) -> bool {
        self.rules.iter().any(|r| match *r {
            IdRule::Map { host, count, .. } => h >= host && u64::from(h - host) < count,
            IdRule::Squash { .. } => false,
        })
    }

    /// Whether some guest id becomes host id `h` (a range covers it, a squash or the unmapped
    /// guest ids fall to it).
    pub fn reaches_host(&self, h: u32) -> bool {
        h == self.unmapped_host
            || self.covers_host(h)
            || self
                .rules
                .iter()
                .any(|r| matches!(*r, IdRule::Squash { host, .. } if host == h))
    }

    /// Whether every id is itself.
    pub fn is_identity(&self) -> bool {
        self.rules.first()
            == Some(&IdRule::Map {
                guest: 0,
                host: 0,
                count: 1 << 32,
            })
    }
}

/// The identity policy of one share (one connection): what the guest may change and how its
/// ids are translated. The server checks permissions itself ([`crate::perm`]) when either
/// map is not the identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharePolicy {
    /// Every change fails with `EROFS`.
    pub read_only: bool,
    /// Guest/host uids.
    pub uid_map: IdMap,
    /// Guest/host gids.
    pub gid_map: IdMap,
}

impl Default for SharePolicy {
    fn default() -> Self {
        SharePolicy {
            read_only: false,
            uid_map: IdMap::identity(),
            gid_map: IdMap::identity(),
        }
    }
}

impl SharePolicy {
    /// Whether ids pass unchanged (guest root is host root): permission checks stay with
    /// the guest's kernel.
    pub fn is_identity(&self) -> bool {
        self.uid_map.is_identity() && self.gid_map.is_identity()
    }

    /// The host uid of guest uid `g` (a fid's attach user; `NONUNAME` is unmapped).
    pub fn host_uid(&self, g: u32) -> u32 {
        if g == crate::wire::NONUNAME {
            self.uid_map.unmapped_host
        } else {
            self.uid_map.to_host(g)
        }
    }

    /// Whether guest uid `g` is root with its privileges over the ids of its ranges (guest
    /// root mapped by a range, not squashed).
    pub fn privileged(&self, g: u32) -> bool {
        g == 0 && self.uid_map.maps_guest(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn keys(u: &str, g: &str, root: Option<&str>, unmapped: Option<&str>) -> PolicyKeys {
        PolicyKeys {
            uid_map: Some(u.to_string()),
            gid_map: Some(g.to_string()),
            squash_root: root.map(str::to_string),
            unmapped_ids: unmapped.map(str::to_string),
        }
    }

    #[test]
    fn ranges_map_both_ways_and_squash_the_rest() {
        let (u, g) = keys(
            "0:100000:65536,70000:300000:10",
            "0:200000:65536",
            None,
            None,
        )
        .maps()
        .unwrap();
        assert_eq!((u.to_host(0), u.to_host(65535)), (100000, 165535));
        assert_eq!((u.to_host(70009), u.to_guest(300009)), (300009, 70009));
        assert_eq!(g.to_host(5), 200005);
        // Outside every range: squashed both ways, never passed through.
        assert_eq!((u.to_host(65536), u.to_host(u32::MAX)), (NOBODY, NOBODY));
        assert_eq!(
            (u.to_guest(0), u.to_guest(1000), g.to_guest(100000)),
            (NOBODY, NOBODY, NOBODY)
        );
        assert!(u.maps_guest(0) && !u.maps_guest(65536));
        assert!(u.covers_host(100000) && !u.covers_host(0));
        assert!(u.reaches_host(NOBODY) && !u.reaches_host(0));
    }

    #[test]
    fn squash_root_all_and_unmapped_ids() {
        let (u, g) = keys("identity", "identity", Some("65534:65533"), None)
            .maps()
            .unwrap();
        assert_eq!((u.to_host(0), g.to_host(0)), (65534, 65533));
        assert_eq!((u.to_host(1000), u.to_guest(0)), (1000, 0));
        assert!(!u.maps_guest(0) && !u.is_identity());
        let (u, g) = keys("all:4242", "all:4343", None, None).maps().unwrap();
        assert_eq!(
            (u.to_host(0), u.to_host(99), g.to_host(7)),
            (4242, 4242, 4343)
        );
        assert_eq!(u.to_guest(4242), NOBODY);
        let (u, g) = keys("0:100000:10", "0:100000:10", None, Some("5000:6000"))
            .maps()
            .unwrap();
        assert_eq!((u.to_host(10), g.to_host(10)), (5000, 6000));
        assert!(u.reaches_host(5000) && !u.reaches_host(6000));
        // No keys at all: identity, the policy of every share before.
        let (u, g) = PolicyKeys::default().maps().unwrap();
        assert!(u.is_identity() && g.is_identity());
        let p = SharePolicy::default();
        assert!(p.is_identity() && p.privileged(0) && !p.privileged(1));
        assert_eq!(p.host_uid(crate::wire::NONUNAME), NOBODY);
        // An empty squash-root is no squash.
        let (u, _) = keys("identity", "identity", Some(""), None).maps().unwrap();
        assert!(u.is_identity());
    }

    #[test]
    fn rejects() {
        let bad = [
            ("", "is not GUEST:HOST:COUNT"),
            ("0:100000", "is not GUEST:HOST:COUNT"),
            ("0:1:2:3", "is not GUEST:HOST:COUNT"),
            ("0:100000:0", "the count is 0"),
            ("x:1:1", "is not a number"),
            ("-1:1:1", "is not a number"),
            ("+1:1:1", "is not a number"),
            ("4294967296:1:1", "above 4294967295"),
            ("99999999999:1:1", "is not a number"),
            ("4294967295:0:2", "goes past"),
            ("0:4294967295:2", "goes past"),
            ("0:0:4294967297", "goes past"),
            ("0:100:10,5:200:10", "guest ids overlap"),
            ("0:100:10,10:105:10", "host ids overlap"),
            ("all:", "is not a number"),
            ("all:x", "is not a number"),
            ("identity,0:1:1", "is not GUEST:HOST:COUNT"),
        ];
        for (v, why) in bad {
            let e = parse_map(v).unwrap_err();
            assert!(e.contains(why), "{v:?}: {e}");
        }
        assert!(parse_map("0:0:4294967296").is_ok(), "the whole id space");
        assert!(parse_map("0:100:10,10:110:10").is_ok(), "adjacent ranges");
        let many: Vec<String> = (0..=MAX_RANGES).map(|i| format!("{i}:{i}:1")).collect();
        assert!(parse_map(&many.join(","))
            .unwrap_err()
            .contains("more than"));
        assert!(parse_map(&"1".repeat(MAX_VALUE_LEN + 1))
            .unwrap_err()
            .contains("longer"));
        for v in ["1", "1:", ":1", "1:2:3", "a:b", "1:4294967296"] {
            assert!(parse_pair(v).is_err(), "{v}");
        }
        assert_eq!(parse_pair(" 7:8 "), Ok((7, 8)));
        let e = keys("identity", "0:1", None, None).maps().unwrap_err();
        assert!(e.starts_with("gid-map: "), "{e}");
        let e = keys("identity", "identity", Some("0"), None)
            .maps()
            .unwrap_err();
        assert!(e.starts_with("squash-root: "), "{e}");
        let e = keys("identity", "identity", None, Some("x:1"))
            .maps()
            .unwrap_err();
        assert!(e.starts_with("unmapped-ids: "), "{e}");
    }
}
