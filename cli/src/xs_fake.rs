//! An in-memory xenstore for host tests: real directory nodes with permission lists inherited
//! from the parent on creation (as xenstored does for dom0's writes), transactions that fail
//! with `EAGAIN` when anything changed since they started (or when told to), per-owner node
//! quotas, a model of C xenstored's own quotas and its `XS_CONTROL` `quota` commands
//! ([`Xenstored`]), a virtual clock, and a hook that plays the other domains (pvfs, the guest)
//! on every poll.

use crate::xs::{Access, Perm, Store, Tx, XsError, NO_TX};
use std::collections::BTreeMap;

/// One node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The value.
    pub value: String,
    /// Permissions, owner first.
    pub perms: Vec<Perm>,
}

type Nodes = BTreeMap<String, Node>;

/// C xenstored's quotas as Xen 4.17 to 4.20 keep them (`tools/xenstore/` and
/// `tools/xenstored/`): one node and one watch quota for every unprivileged domain, checked
/// when such a domain creates a node of its own, never for dom0's writes (even of nodes
/// another domain owns, which count against that domain all the same), and the `XS_CONTROL`
/// commands `quota` (the settings), `quota <domid>` (a domain's use) and `quota set <name>
/// <value>` (a new global value), which only dom0 may send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Xenstored {
    /// `nodes`: how many nodes an unprivileged domain may own (1000 by default).
    pub nodes: usize,
    /// `watches` (128 by default).
    pub watches: usize,
    /// Watches each domain holds (the fake does not track watches itself).
    pub watches_used: BTreeMap<u16, usize>,
    /// Whether `quota set` is accepted (false: answered `EACCES`, as if xenstored refused).
    pub settable: bool,
    /// Answer in Xen 4.17's format (`nodes           :       12`) instead of 4.20's
    /// (`nodes            :       12 (max       15)`).
    pub format_417: bool,
    /// Every `quota set` accepted, as `(name, value)`.
    pub sets: Vec<(String, usize)>,
    /// Acknowledge `quota set` without changing anything.
    pub ignore_sets: bool,
    /// Answer as oxenstored does (`tools/ocaml/xenstored/process.ml`, `do_debug`): `quota
    /// <domid>` is `dom<domid> quota: <nodes>/<quota>`, and anything it does not know, `quota`
    /// and `quota set …` included, is acknowledged with `OK` and does nothing.
    pub oxenstored: bool,
}

impl Default for Xenstored {
    fn default() -> Self {
        Self {
            nodes: 1000,
            watches: 128,
            watches_used: BTreeMap::new(),
            settable: true,
            format_417: false,
            sets: Vec::new(),
            ignore_sets: false,
            oxenstored: false,
        }
    }
}

/// Something that happens on every poll: the other domains reacting.
pub type Hook = Box<dyn FnMut(&mut FakeStore)>;

/// The fake.
pub struct FakeStore {
    /// The committed nodes, by absolute path (the root `/` included).
    pub nodes: Nodes,
    /// Open transactions: their copy of the nodes and the generation they started at.
    txs: BTreeMap<Tx, (Nodes, u64)>,
    next_tx: Tx,
    /// Bumped by every committed change.
    generation: u64,
    /// The next this many commits fail with EAGAIN (on top of real conflicts).
    pub fail_commits: u32,
    /// Commits that succeeded / failed with EAGAIN.
    pub commits: u32,
    /// See `commits`.
    pub conflicts: u32,
    /// Node quota per owning domain, checked for every writer, dom0 included (a stricter
    /// xenstored than C xenstored, whose quotas [`xenstored`](Self::xenstored) models).
    pub quota: BTreeMap<u16, usize>,
    /// C xenstored's quotas and `XS_CONTROL quota`; `None`: a xenstored without them, which
    /// answers `XS_CONTROL` with `EINVAL`.
    pub xenstored: Option<Xenstored>,
    /// The caller's domain: 0 is privileged; others are checked against the permissions.
    pub caller: u16,
    /// Virtual time, ms.
    pub now: u64,
    /// Runs at every `sleep_ms`.
    pub hook: Option<Hook>,
    /// Runs once, right after the next transaction started (a concurrent writer).
    pub on_tx_start: Option<Hook>,
    /// Every mutating request, as `(tx, "op path")`, for tests to inspect.
    pub log: Vec<(Tx, String)>,
}

fn parent(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    match path.rfind('/') {
        Some(0) => Some("/"),
        Some(i) => path.get(..i),
        None => None,
    }
}

fn is_under(k: &str, path: &str) -> bool {
    k == path || (k.starts_with(path) && k.as_bytes().get(path.len()) == Some(&b'/'))
}

impl Default for FakeStore {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeStore {
    /// A store with only `/`, owned by dom0.
    pub fn new() -> Self {
        let mut nodes = Nodes::new();
        nodes.insert(
            "/".into(),
            Node {
                value: String::new(),
                perms: vec![Perm::new(0, Access::None)],
            },
        );
        Self {
            nodes,
            txs: BTreeMap::new(),
            next_tx: 1,
            generation: 0,
            fail_commits: 0,
            commits: 0,
            conflicts: 0,
            quota: BTreeMap::new(),
            xenstored: None,
            caller: 0,
            now: 0,
            hook: None,
            on_tx_start: None,
            log: Vec::new(),
        }
    }

    /// Test setup: writes a node outside any transaction, creating parents.
    pub fn set(&mut self, path: &str, value: &str) {
        let caller = std::mem::replace(&mut self.caller, 0);
        let r = self.write(NO_TX, path, value);
        self.caller = caller;
        r.expect("setup write");
    }

    /// Test setup: sets a node's permissions.
    pub fn chmod(&mut self, path: &str, perms: &[Perm]) {
        self.nodes.get_mut(path).expect("chmod: no node").perms = perms.to_vec();
    }

    /// Reads a committed node.
    pub fn get(&self, path: &str) -> Option<&str> {
        self.nodes.get(path).map(|n| n.value.as_str())
    }

    /// Whether `path` exists (committed).
    pub fn exists(&self, path: &str) -> bool {
        self.nodes.contains_key(path)
    }

    /// The committed nodes at or under `path`, relative to it (`""` for `path` itself).
    pub fn subtree(&self, path: &str) -> BTreeMap<String, String> {
        self.nodes
            .iter()
            .filter(|(k, _)| is_under(k, path))
            .map(|(k, n)| {
                (
                    k[path.len()..].trim_start_matches('/').to_string(),
                    n.value.clone(),
                )
            })
            .collect()
    }

    /// Nodes owned by `domid`.
    pub fn owned_by(&self, domid: u16) -> usize {
        self.nodes
            .values()
            .filter(|n| n.perms.first().map(|p| p.domid) == Some(domid))
            .count()
    }

    fn view(&mut self, tx: Tx) -> Result<&mut Nodes, XsError> {
        if tx == NO_TX {
            return Ok(&mut self.nodes);
        }
        self.txs
            .get_mut(&tx)
            .map(|(n, _)| n)
            .ok_or_else(|| XsError::Other("ESRCH".into()))
    }

    fn check(&self, nodes: &Nodes, path: &str, write: bool) -> Result<(), XsError> {
        if self.caller == 0 {
            return Ok(());
        }
        let Some(n) = nodes.get(path) else {
            return Ok(());
        };
        let ok = n.perms.first().is_some_and(|o| o.domid == self.caller) || {
            let entry = n
                .perms
                .iter()
                .skip(1)
                .find(|p| p.domid == self.caller)
                .or(n.perms.first());
            entry.is_some_and(|p| {
                if write {
                    matches!(p.access, Access::Write | Access::Both)
                } else {
                    p.can_read()
                }
            })
        };
        if ok {
            Ok(())
        } else {
            Err(XsError::Denied(path.into()))
        }
    }

    fn over_quota(quota: &BTreeMap<u16, usize>, nodes: &Nodes, owner: u16) -> bool {
        quota.get(&owner).is_some_and(|&max| {
            nodes
                .values()
                .filter(|n| n.perms.first().map(|p| p.domid) == Some(owner))
                .count()
                > max
        })
    }

    /// Creates `path` and missing parents in `nodes`, each inheriting its parent's perms.
    fn create(&mut self, tx: Tx, path: &str) -> Result<(), XsError> {
        if !path.starts_with('/') || path.ends_with('/') && path != "/" || path.contains("//") {
            return Err(XsError::Other(format!("{path}: EINVAL")));
        }
        let quota = self.quota.clone();
        let caller = self.caller;
        let xsd_nodes = self.xenstored.as_ref().map(|x| x.nodes);
        let nodes = self.view(tx)?;
        let mut missing = Vec::new();
        let mut p = path;
        while !nodes.contains_key(p) {
            missing.push(p.to_string());
            p = parent(p).unwrap_or("/");
        }
        for m in missing.into_iter().rev() {
            let perms = parent(&m)
                .and_then(|pp| nodes.get(pp))
                .map(|n| n.perms.clone())
                .unwrap_or_default();
            let owner = perms.first().map_or(0, |p| p.domid);
            // C xenstored: an unprivileged domain may not create a node while it owns as many
            // as its quota allows (`domain_nbentry(conn) >= quota`).
            if let Some(max) = xsd_nodes.filter(|_| caller != 0) {
                let own = nodes
                    .values()
                    .filter(|n| n.perms.first().map(|p| p.domid) == Some(caller))
                    .count();
                if own >= max {
                    return Err(XsError::Quota(format!("{m} (ENOSPC)")));
                }
            }
            nodes.insert(
                m.clone(),
                Node {
                    value: String::new(),
                    perms,
                },
            );
            if Self::over_quota(&quota, nodes, owner) {
                nodes.remove(&m);
                return Err(XsError::Quota(format!("{m} (ENOSPC)")));
            }
        }
        Ok(())
    }

    fn changed(&mut self, tx: Tx, what: String) {
        self.log.push((tx, what));
        if tx == NO_TX {
            self.generation += 1;
        }
    }
}

impl Store for FakeStore {
    fn read(&mut self, tx: Tx, path: &str) -> Result<Option<String>, XsError> {
        let nodes = self.view(tx)?.clone();
        self.check(&nodes, path, false)?;
        Ok(nodes.get(path).map(|n| n.value.clone()))
    }
    fn write(&mut self, tx: Tx, path: &str, value: &str) -> Result<(), XsError> {
        let snapshot = self.view(tx)?.clone();
        self.check(&snapshot, path, true)?;
        self.create(tx, path)?;
        if let Some(n) = self.view(tx)?.get_mut(path) {
            n.value = value.to_string();
        }
        self.changed(tx, format!("write {path}={value}"));
        Ok(())
    }
    fn mkdir(&mut self, tx: Tx, path: &str) -> Result<(), XsError> {
        self.create(tx, path)?;
        self.changed(tx, format!("mkdir {path}"));
        Ok(())
    }
    fn rm(&mut self, tx: Tx, path: &str) -> Result<(), XsError> {
        let snapshot = self.view(tx)?.clone();
        self.check(&snapshot, path, true)?;
        let nodes = self.view(tx)?;
        let had = nodes.contains_key(path);
        nodes.retain(|k, _| !is_under(k, path));
        if had {
            self.changed(tx, format!("rm {path}"));
        }
        Ok(())
    }
    fn directory(&mut self, tx: Tx, path: &str) -> Result<Vec<String>, XsError> {
        let nodes = self.view(tx)?.clone();
        self.check(&nodes, path, false)?;
        let prefix = if path == "/" {
            "/".to_string()
        } else {
            format!("{path}/")
        };
        Ok(nodes
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .filter(|rest| !rest.is_empty() && !rest.contains('/'))
            .map(str::to_string)
            .collect())
    }
    fn set_perms(&mut self, tx: Tx, path: &str, perms: &[Perm]) -> Result<(), XsError> {
        if self.caller != 0 {
            return Err(XsError::Denied(path.into()));
        }
        let quota = self.quota.clone();
        let nodes = self.view(tx)?;
        let n = nodes
            .get_mut(path)
            .ok_or_else(|| XsError::NoEnt(path.into()))?;
        let old = std::mem::replace(&mut n.perms, perms.to_vec());
        let owner = perms.first().map_or(0, |p| p.domid);
        if Self::over_quota(&quota, nodes, owner) {
            if let Some(n) = nodes.get_mut(path) {
                n.perms = old;
            }
            return Err(XsError::Quota(format!("{path} (ENOSPC)")));
        }
        let text: Vec<String> = perms.iter().map(Perm::encode).collect();
        self.changed(tx, format!("perms {path} {}", text.join(",")));
        Ok(())
    }
    fn tx_start(&mut self) -> Result<Tx, XsError> {
        let id = self.next_tx;
        self.next_tx += 1;
        self.txs.insert(id, (self.nodes.clone(), self.generation));
        if let Some(mut h) = self.on_tx_start.take() {
            h(self);
        }
        Ok(id)
    }
    fn tx_end(&mut self, tx: Tx, commit: bool) -> Result<(), XsError> {
        let (nodes, started) = self
            .txs
            .remove(&tx)
            .ok_or_else(|| XsError::Other("ESRCH".into()))?;
        if !commit {
            return Ok(());
        }
        if self.fail_commits > 0 || started != self.generation {
            self.fail_commits = self.fail_commits.saturating_sub(1);
            self.conflicts += 1;
            return Err(XsError::Again);
        }
        self.nodes = nodes;
        self.generation += 1;
        self.commits += 1;
        self.log.push((NO_TX, format!("commit {tx}")));
        Ok(())
    }
    fn sleep_ms(&mut self, ms: u64) {
        self.now += ms;
        if let Some(mut h) = self.hook.take() {
            h(self);
            if self.hook.is_none() {
                self.hook = Some(h);
            }
        }
    }
    fn now_ms(&mut self) -> u64 {
        self.now
    }
    fn control(&mut self, args: &[&str]) -> Result<String, XsError> {
        let what = format!("XS_CONTROL {}", args.join(" "));
        if self.caller != 0 {
            return Err(XsError::Denied(what));
        }
        let owned: BTreeMap<u16, usize> = self.nodes.values().filter_map(|n| n.perms.first()).fold(
            BTreeMap::new(),
            |mut m, p| {
                *m.entry(p.domid).or_default() += 1;
                m
            },
        );
        let Some(x) = self.xenstored.as_mut() else {
            return Err(XsError::Other(format!("{what}: EINVAL")));
        };
        let line = |name: &str, val: usize, f417: bool| {
            if f417 {
                format!("{name:<16}: {val:>8}\n")
            } else {
                format!("{name:<17}: {val:>8} (max {val:>8})\n")
            }
        };
        if x.oxenstored {
            return Ok(match args {
                ["quota", d, ..] if d.parse::<u16>().is_ok() => {
                    let d: u16 = d.parse().unwrap_or(0);
                    match owned.get(&d) {
                        Some(n) => format!("dom{d} quota: {n}/{}", x.nodes),
                        None => format!("dom{d} quota: not set"),
                    }
                }
                _ => "OK".into(),
            });
        }
        match args {
            ["quota"] => Ok(format!(
                "Quota settings:\n{}{}",
                format_args!("{:<17}: {:>8} Nodes per domain\n", "nodes", x.nodes),
                format_args!("{:<17}: {:>8} Watches per domain\n", "watches", x.watches),
            )),
            ["quota", "set", name, val] => {
                let v: usize = val
                    .parse()
                    .map_err(|_| XsError::Other(format!("{what}: EINVAL")))?;
                if !x.settable {
                    return Err(XsError::Denied(what));
                }
                if x.ignore_sets {
                    return Ok("OK".into());
                }
                match *name {
                    "nodes" => x.nodes = v,
                    "watches" => x.watches = v,
                    _ => return Err(XsError::Other(format!("{what}: EINVAL"))),
                }
                x.sets.push((name.to_string(), v));
                Ok("OK".into())
            }
            ["quota", domid] => {
                let d: u16 = domid
                    .parse()
                    .map_err(|_| XsError::Other(format!("{what}: EINVAL")))?;
                let f = x.format_417;
                Ok(format!(
                    "Domain {d}:\n{}{}{}",
                    line("nodes", owned.get(&d).copied().unwrap_or(0), f),
                    line("watches", x.watches_used.get(&d).copied().unwrap_or(0), f),
                    line("transactions", 0, f),
                ))
            }
            _ => Err(XsError::Other(format!("{what}: EINVAL"))),
        }
    }
}

/// Serves the xenstore wire protocol on `io` from `store`, as xenstored would on its socket,
/// until the peer hangs up. After each request the store's hook runs (the other domains act).
pub fn serve<T: std::io::Read + std::io::Write>(mut store: FakeStore, mut io: T) {
    use pvfs_ring::xenstore::{encode_request, Decoder, MsgType};
    let mut dec = Decoder::default();
    let mut buf = vec![0u8; 8192];
    loop {
        let msg = loop {
            match dec.next_message() {
                Ok(Some(m)) => break m,
                Ok(None) => {}
                Err(_) => return,
            }
            match io.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => dec.push(&buf[..n]),
            }
        };
        let h = msg.header;
        let mut parts = msg.payload.split(|&b| b == 0);
        let mut arg = || String::from_utf8_lossy(parts.next().unwrap_or(&[])).into_owned();
        let ty = MsgType::from_u32(h.ty);
        let path = arg();
        let ok = |r: Result<(), XsError>| r.map(|()| b"OK\0".to_vec());
        let res: Result<Vec<u8>, XsError> = match ty {
            Some(MsgType::Read) => store.read(h.tx_id, &path).and_then(|v| {
                v.map(String::into_bytes)
                    .ok_or(XsError::NoEnt(path.clone()))
            }),
            Some(MsgType::Directory) => store.directory(h.tx_id, &path).map(|names| {
                names
                    .iter()
                    .flat_map(|n| n.bytes().chain(std::iter::once(0)))
                    .collect()
            }),
            Some(MsgType::Write) => {
                let value = msg
                    .payload
                    .get(path.len() + 1..)
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_default();
                ok(store.write(h.tx_id, &path, &value))
            }
            Some(MsgType::Mkdir) => ok(store.mkdir(h.tx_id, &path)),
            Some(MsgType::Rm) => ok(store.rm(h.tx_id, &path)),
            Some(MsgType::SetPerms) => {
                let mut perms = Vec::new();
                loop {
                    let p = arg();
                    if p.is_empty() {
                        break;
                    }
                    let access = match p.as_bytes()[0] {
                        b'n' => Access::None,
                        b'r' => Access::Read,
                        b'w' => Access::Write,
                        _ => Access::Both,
                    };
                    perms.push(Perm::new(p[1..].parse().expect("perm domid"), access));
                }
                ok(store.set_perms(h.tx_id, &path, &perms))
            }
            Some(MsgType::TransactionStart) => {
                store.tx_start().map(|t| format!("{t}\0").into_bytes())
            }
            Some(MsgType::TransactionEnd) => ok(store.tx_end(h.tx_id, path == "T")),
            Some(MsgType::Control) => {
                let mut args = vec![path.clone()];
                loop {
                    let a = arg();
                    if a.is_empty() {
                        break;
                    }
                    args.push(a);
                }
                let refs: Vec<&str> = args.iter().map(String::as_str).collect();
                store.control(&refs).map(|t| format!("{t}\0").into_bytes())
            }
            _ => Err(XsError::Other("EINVAL".into())),
        };
        let (rty, payload) = match res {
            Ok(p) => (ty.unwrap_or(MsgType::Error), p),
            Err(e) => {
                let text = match e {
                    XsError::Again => "EAGAIN",
                    XsError::Denied(_) => "EACCES",
                    XsError::Quota(_) => "ENOSPC",
                    XsError::NoEnt(_) => "ENOENT",
                    _ => "EINVAL",
                };
                (MsgType::Error, format!("{text}\0").into_bytes())
            }
        };
        let reply = encode_request(rty, h.req_id, h.tx_id, &[&payload]).expect("reply");
        // Deliver in two pieces, to exercise reassembly.
        let (a, b) = reply.split_at(reply.len() / 2);
        if io.write_all(a).is_err() || io.write_all(b).is_err() {
            return;
        }
        store.sleep_ms(0);
    }
}
