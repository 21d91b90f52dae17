//! `pvfs top` (the table, its rates, the JSON, the refresh loop) and the `USED` column of
//! `pvfs share ls`, from the `stats` key pvfs publishes.

use super::*;
use crate::share::top::{top, top_json, top_table, Figures, TopOpts, TOP_COLUMNS};
use pvfs_ring::xenbus::STATS_FIELDS;

/// A `stats` value in pvfs's format, with `values` for the fields of [`STATS_FIELDS`] in
/// order.
fn stats_value(values: [&str; 18]) -> String {
    let mut s: Vec<String> = STATS_FIELDS
        .iter()
        .zip(values)
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    s.push("types=walk:3,read:2,other:1".into());
    s.join(" ")
}

fn set_stats(s: &mut FakeStore, dev: u32, v: &str) {
    s.set(
        &format!("/local/domain/{PVFS}/backend/9pfs/{GUEST}/{dev}/stats"),
        v,
    );
}

/// pvfs has not published the device's figures yet.
fn clear_stats(s: &mut FakeStore, dev: u32) {
    let key = format!("/local/domain/{PVFS}/backend/9pfs/{GUEST}/{dev}/stats");
    s.rm(NO_TX, &key).unwrap();
}

const FIRST: [&str; 18] = [
    "100", "1048576", "0", "2", "1", "100", "5000", "40", "90", "800", "1200", "3145728", "12",
    "1", "-", "-", "0", "0",
];
const SECOND: [&str; 18] = [
    "300", "3145728", "2097152", "2", "1", "300", "9000", "48", "96", "1500", "2000", "5242880",
    "14", "0", "100", "-", "3", "2500",
];

#[test]
fn figures_parse_every_field_and_the_types() {
    let f = Figures::parse(&stats_value(FIRST));
    for (k, v) in STATS_FIELDS.iter().zip(FIRST) {
        assert_eq!(f.num(k), v.parse().ok(), "{k}");
    }
    assert_eq!(
        f.types,
        [("walk".into(), 3), ("read".into(), 2), ("other".into(), 1)]
    );
    // garbage words and values are skipped, not fatal
    let f = Figures::parse("requests=x junk lat_p50_us=7 types=walk:z,read:1");
    assert_eq!(f.num("requests"), None);
    assert_eq!(f.num("lat_p50_us"), Some(7));
    assert_eq!(f.types, [("read".into(), 1)]);
}

#[test]
fn table_shows_totals_rates_and_latencies() {
    let (mut s, _) = setup();
    add(&mut s, &be(), &vm1(), &opts("data", "/exports/vm1")).unwrap();
    add(&mut s, &be(), &vm1(), &opts("logs", "/exports/vm1")).unwrap();
    clear_stats(&mut s, 1);
    set_stats(&mut s, 0, &stats_value(FIRST));
    let before = shares(&mut s, PVFS, None).unwrap();
    set_stats(&mut s, 0, &stats_value(SECOND));
    let now = shares(&mut s, PVFS, None).unwrap();
    let t = top_table(&now, Some((&before, 2000)));
    let lines: Vec<Vec<&str>> = t.lines().map(|l| l.split_whitespace().collect()).collect();
    // Written out: the documented column names are what is checked.
    assert_eq!(
        lines[0],
        [
            "GUEST",
            "DOMID",
            "DEV",
            "TAG",
            "STATE",
            "REQS",
            "REQ/S",
            "READ-MIB/S",
            "WRITE-MIB/S",
            "ERRORS",
            "LAT-P50",
            "LAT-P99",
            "LAT-MAX",
            "HELD-S",
            "USED-MIB"
        ]
    );
    assert_eq!(lines[0], TOP_COLUMNS);
    // 200 requests, 2 MiB read and written in 2 s
    assert_eq!(
        lines[1],
        [
            "vm1",
            "3",
            "0",
            "data",
            "Connected",
            "300",
            "100",
            "1.0",
            "1.0",
            "2",
            "48us",
            "1.5ms",
            "2.0ms",
            "2.5",
            "5.0"
        ]
    );
    // a share with nothing published yet: dashes
    assert_eq!(
        lines[2],
        [
            "vm1",
            "3",
            "1",
            "logs",
            "Connected",
            "-",
            "-",
            "-",
            "-",
            "-",
            "-",
            "-",
            "-",
            "-",
            "-"
        ]
    );
    // no earlier sample: no rates
    let t = top_table(&now, None);
    let row: Vec<&str> = t.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[5..9], ["300", "-", "-", "-"]);
    // a counter that went backwards (the device reconnected): no rate, not a negative one
    let t = top_table(&before, Some((&now, 1000)));
    let row: Vec<&str> = t.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[5..9], ["100", "-", "-", "-"]);
}

#[test]
fn json_has_every_field_as_a_number() {
    let (mut s, _) = setup();
    add(&mut s, &be(), &vm1(), &opts("data", "/exports/vm1")).unwrap();
    add(&mut s, &be(), &vm1(), &opts("logs", "/exports/vm1")).unwrap();
    clear_stats(&mut s, 1);
    let mut v = FIRST;
    v[11] = "-";
    set_stats(&mut s, 0, &stats_value(v));
    let now = shares(&mut s, PVFS, None).unwrap();
    let j = top_json(&now);
    let fields: Vec<String> = STATS_FIELDS
        .iter()
        .zip(v)
        .map(|(k, v)| format!("\"{k}\":{}", if v == "-" { "null" } else { v }))
        .collect();
    assert_eq!(
        j,
        format!(
            "[{{\"guest\":\"vm1\",\"domid\":3,\"devid\":0,\"tag\":\"data\",\"state\":\"Connected\",\"stats\":{{{},\"types\":{{\"walk\":3,\"read\":2,\"other\":1}}}}}},{{\"guest\":\"vm1\",\"domid\":3,\"devid\":1,\"tag\":\"logs\",\"state\":\"Connected\",\"stats\":null}}]\n",
            fields.join(",")
        )
    );
}

#[test]
fn top_refreshes_then_stops_and_json_prints_once() {
    let (mut s, _) = setup();
    add(&mut s, &be(), &vm1(), &opts("data", "/exports/vm1")).unwrap();
    set_stats(&mut s, 0, &stats_value(FIRST));
    let o = TopOpts {
        backend: "pvfs".into(),
        json: false,
        delay_s: 2,
        iterations: Some(3),
        clear: false,
    };
    let t0 = s.now_ms();
    let mut out = Vec::new();
    top(&mut s, &o, &mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert_eq!(
        out.matches("pvfs top: pvfs (7), 1 share, every 2 s")
            .count(),
        3
    );
    assert_eq!(out.matches("\nvm1 ").count(), 3, "{out}");
    assert!(!out.contains('\x1b'));
    // two sleeps between three frames
    assert!(s.now_ms() - t0 >= 4000);
    let mut out = Vec::new();
    top(
        &mut s,
        &TopOpts {
            clear: true,
            iterations: Some(1),
            ..o.clone()
        },
        &mut out,
    )
    .unwrap();
    assert!(out.starts_with(b"\x1b[H\x1b[2J"));
    let mut out = Vec::new();
    top(
        &mut s,
        &TopOpts {
            json: true,
            ..o.clone()
        },
        &mut out,
    )
    .unwrap();
    assert!(String::from_utf8(out)
        .unwrap()
        .starts_with("[{\"guest\":\"vm1\""));
    let e = top(
        &mut s,
        &TopOpts {
            delay_s: 0,
            ..o.clone()
        },
        &mut Vec::new(),
    )
    .unwrap_err();
    assert_eq!(e.code(), 2);
    let e = top(
        &mut s,
        &TopOpts {
            backend: "nope".into(),
            ..o
        },
        &mut Vec::new(),
    )
    .unwrap_err();
    assert_eq!(e.code(), 4);
}

#[test]
fn ls_shows_the_published_use() {
    let (mut s, _) = setup();
    add(&mut s, &be(), &vm1(), &opts("data", "/exports/vm1")).unwrap();
    set_stats(&mut s, 0, &stats_value(FIRST));
    let list = shares(&mut s, PVFS, None).unwrap();
    let t = ls_table(&list);
    let row: Vec<&str> = t.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row[row.len() - 2], "3.0MiB/12f");
    let j = ls_json(&list);
    assert!(
        j.contains("\"space_used_mib\":3,\"files_used\":12,\"open_files_used\":1,"),
        "{j}"
    );
    // not measured (no byte or file quota): dashes and nulls, open files still counted
    let mut v = FIRST;
    v[11] = "-";
    v[12] = "-";
    set_stats(&mut s, 0, &stats_value(v));
    let list = shares(&mut s, PVFS, None).unwrap();
    let row: Vec<String> = ls_table(&list)
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .map(String::from)
        .collect();
    assert_eq!(row[row.len() - 2], "-");
    assert!(ls_json(&list)
        .contains("\"space_used_mib\":null,\"files_used\":null,\"open_files_used\":1,"));
}
