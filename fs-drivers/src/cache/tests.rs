//! Tests of the block cache.

use super::*;
use crate::block::MemDisk;

/// 16 blocks of 1 KiB, each filled with its own number.
fn numbered_disk() -> MemDisk<'static> {
    let mut img = alloc::vec![0u8; 1024 * 16];
    for (i, c) in img.chunks_mut(1024).enumerate() {
        c.fill(i as u8);
    }
    MemDisk::new(img)
}

#[test]
fn lru_eviction_order() {
    let mut d = numbered_disk();
    let mut c = BlockCache::new(1024, 4 * 1024);
    for b in 0..4 {
        assert_eq!(c.get(&mut d, b).unwrap()[0], b as u8);
    }
    assert_eq!(c.stats().misses, 4);
    c.get(&mut d, 0).unwrap(); // 0 becomes MRU; LRU is 1
    c.get(&mut d, 9).unwrap(); // evicts 1
    assert_eq!(c.len(), 4);
    c.get(&mut d, 0).unwrap();
    assert_eq!(c.stats().hits, 2);
    c.get(&mut d, 1).unwrap();
    assert_eq!(c.stats().misses, 6);
    assert_eq!(c.stats().evictions, 2);
    c.invalidate(9);
    assert_eq!(c.len(), 3);
    assert_eq!(c.get(&mut d, 9).unwrap()[5], 9);
    assert!(c.get(&mut d, 16).is_err());
    assert_eq!(c.get(&mut d, 3).unwrap()[0], 3);
    // Buffers stay allocated up to the capacity, no further, whatever was evicted.
    assert_eq!(c.buffer_bytes(), 4 * 1024);
}

#[test]
fn checked_tags_last_until_the_bytes_change() {
    let mut d = numbered_disk();
    // four blocks (the least a cache holds)
    let mut c = BlockCache::new(1024, 4 * 1024);
    // Not cached: nothing to record.
    c.set_checked(3, 1);
    assert_eq!(c.checked(3), None);
    c.get(&mut d, 3).unwrap();
    assert_eq!(c.checked(3), None);
    c.set_checked(3, 7);
    c.get(&mut d, 3).unwrap();
    assert_eq!(c.checked(3), Some(7), "a hit keeps the tag");
    c.get_mut(&mut d, 3).unwrap()[0] = 0xAA;
    assert_eq!(c.checked(3), None, "writable access drops it");
    c.set_checked(3, 8);
    c.put(&mut d, 3, &[5u8; 1024]).unwrap();
    assert_eq!(c.checked(3), None, "put drops it");
    c.set_checked(3, 9);
    c.get_zeroed_mut(&mut d, 3).unwrap();
    assert_eq!(c.checked(3), None, "overwrite drops it");
    c.write_back(&mut d, |_| true).unwrap();
    c.set_checked(3, 10);
    c.invalidate(3);
    assert_eq!(c.checked(3), None, "invalidate drops it");
    c.get(&mut d, 3).unwrap();
    c.set_checked(3, 11);
    // Evicted by four other blocks, then read again: the tag is gone with the old bytes.
    for b in 4..8 {
        c.get(&mut d, b).unwrap();
    }
    assert_eq!(c.checked(3), None);
    c.get(&mut d, 3).unwrap();
    assert_eq!(c.checked(3), None, "a new read starts without a tag");
    // A slot reused for another block does not carry the tag to it.
    c.set_checked(3, 12);
    for b in 8..12 {
        c.get(&mut d, b).unwrap();
        assert_eq!(c.checked(b), None);
    }
    assert_eq!(c.checked(3), None);
}

#[test]
fn a_failed_read_leaves_no_block_in_the_slot_it_took() {
    let mut d = crate::block::FaultyDisk::new(numbered_disk());
    // block 5 of 1 KiB: sectors 10 and 11
    d.fail_sector(10);
    let mut c = BlockCache::new(1024, 4 * 1024);
    for b in 0..4 {
        c.get(&mut d, b).unwrap();
    }
    c.set_checked(0, 1);
    // Block 0 is the least recently used: its slot is taken for block 5, whose read fails.
    assert!(c.get(&mut d, 5).is_err());
    assert_eq!(c.checked(0), None);
    assert_eq!(c.checked(5), None);
    assert_eq!(
        c.get(&mut d, 0).unwrap()[7],
        0,
        "block 0 is read again, intact"
    );
    assert_eq!(c.get(&mut d, 3).unwrap()[7], 3);
    assert_eq!(c.buffer_bytes(), 4 * 1024, "no slot was lost or added");
    assert_eq!(c.len(), 4);
}

#[test]
fn memory_follows_the_blocks_held_up_to_the_capacity() {
    let mut d = MemDisk::new(alloc::vec![0u8; 1024 * 16]);
    let mut c = BlockCache::new(1024, 4 * 1024);
    assert_eq!(c.buffer_bytes(), 0);
    c.get(&mut d, 0).unwrap();
    c.get(&mut d, 1).unwrap();
    assert_eq!(c.buffer_bytes(), 2 * 1024);
    for b in 2..12 {
        c.get(&mut d, b).unwrap();
    }
    assert_eq!(c.buffer_bytes(), 4 * 1024);
    // Dirty blocks are never dropped: the cache grows past its capacity until write-back.
    for b in 0..6 {
        c.get_mut(&mut d, b).unwrap().fill(1);
    }
    assert_eq!(c.buffer_bytes(), 6 * 1024);
}

#[test]
fn memory_counts_the_slots_and_the_index_with_the_buffers() {
    let n = 1000usize;
    let mut d = MemDisk::new(alloc::vec![0u8; 1024 * n]);
    let mut c = BlockCache::new(1024, 1024 * n);
    let empty = c.memory_bytes();
    for b in 0..n as u64 {
        c.get(&mut d, b).unwrap();
    }
    assert_eq!(c.buffer_bytes(), 1024 * n);
    let books = c.memory_bytes() - c.buffer_bytes();
    // Every block has a slot, and the index stays at most half full.
    let least = n * (core::mem::size_of::<Slot>() + 2 * core::mem::size_of::<(u64, usize)>());
    assert!(
        books >= least,
        "bookkeeping {books} bytes, want at least {least}"
    );
    // and no more than a few hundred bytes a block, capacity slack included
    assert!(books <= n * 256, "bookkeeping {books} bytes for {n} blocks");
    assert!(empty < books);
}

#[test]
fn put_replaces_a_block_without_reading_it() {
    let mut d = MemDisk::new(alloc::vec![0x11u8; 1024 * 8]);
    let mut c = BlockCache::new(1024, 2 * 1024);
    c.get(&mut d, 0).unwrap();
    c.get(&mut d, 1).unwrap();
    // The cache is full of clean blocks: put reuses a slot, whose old bytes must not leak.
    c.put(&mut d, 5, &[0x22u8; 1024]).unwrap();
    assert_eq!(c.stats().misses, 2, "put does not read the device");
    assert!(c.get(&mut d, 5).unwrap().iter().all(|&b| b == 0x22));
    assert_eq!(c.dirty_count(), 1);
    assert!(c.put(&mut d, 6, &[0u8; 512]).is_err(), "not a whole block");
    assert!(
        c.put(&mut d, 8, &[0u8; 1024]).is_err(),
        "past the end of the device"
    );
    c.write_back(&mut d, |_| true).unwrap();
    assert!(d.bytes()[5 * 1024..6 * 1024].iter().all(|&b| b == 0x22));
}

#[test]
fn read_run_mixes_cached_blocks_and_device_runs() {
    let mut d = numbered_disk();
    let mut c = BlockCache::new(1024, 6 * 1024);
    // Block 3 is dirty in the cache (newer than the device), block 5 clean.
    c.get_mut(&mut d, 3).unwrap().fill(0xEE);
    c.get(&mut d, 5).unwrap();
    let mut buf = alloc::vec![0u8; 8 * 1024];
    c.read_run(&mut d, 1, &mut buf).unwrap();
    let firsts: Vec<u8> = buf.chunks(1024).map(|b| b[0]).collect();
    assert_eq!(firsts, [1, 2, 0xEE, 4, 5, 6, 7, 8]);
    assert!(buf.chunks(1024).all(|b| b.iter().all(|&x| x == b[0])));
    // Two cached blocks were hits; the cache kept device blocks only while it had room.
    assert_eq!(c.stats().hits, 2);
    assert_eq!(c.len(), 6);
    let before = c.stats().misses;
    c.read_run(&mut d, 1, &mut buf).unwrap();
    assert_eq!(
        c.stats().misses - before,
        2,
        "only the blocks that did not fit are re-read"
    );
    assert!(
        c.read_run(&mut d, 15, &mut buf).is_err(),
        "past the end of the device"
    );
}

#[test]
fn dirty_blocks_stay_until_written_back() {
    let mut d = MemDisk::new(alloc::vec![0u8; 1024 * 16]);
    let mut c = BlockCache::new(1024, 4 * 1024);
    c.get_mut(&mut d, 1).unwrap().fill(0xAA);
    c.get_zeroed_mut(&mut d, 2).unwrap()[0] = 0xBB;
    assert_eq!(c.dirty_count(), 2);
    assert_eq!(c.dirty_blocks(), [1, 2]);
    // Fill the cache with clean blocks: the dirty ones are not evicted.
    for b in 5..12 {
        c.get(&mut d, b).unwrap();
    }
    assert_eq!(c.get(&mut d, 1).unwrap()[7], 0xAA);
    assert_eq!(d.bytes()[1024], 0, "written before write_back");
    assert_eq!(c.write_back(&mut d, |b| b == 2).unwrap(), 1);
    assert_eq!((d.bytes()[2048], d.bytes()[1024]), (0xBB, 0));
    assert_eq!(c.write_back(&mut d, |_| true).unwrap(), 1);
    assert_eq!(d.bytes()[1024], 0xAA);
    assert_eq!(c.dirty_count(), 0);
    // Clean now: evictable again, and the cache shrinks back to its capacity.
    for b in 5..12 {
        c.get(&mut d, b).unwrap();
    }
    assert!(c.len() <= c.capacity());
    assert!(c.get_zeroed_mut(&mut d, 16).is_err());
}

#[test]
fn post_back_starts_what_the_queue_takes_and_keeps_the_rest_dirty() {
    use crate::block::QueueDisk;
    let mut d = QueueDisk::new(MemDisk::new(alloc::vec![0u8; 1024 * 16]), 3);
    let mut c = BlockCache::new(1024, 8 * 1024);
    for b in 1..5 {
        c.get_zeroed_mut(&mut d, b).unwrap().fill(b as u8);
    }
    c.get(&mut d, 6).unwrap();
    // 6 is clean and 9 is not cached: skipped; `max` stops at two.
    let done = c.post_back(&mut d, [6, 9, 1, 2, 3, 4], 2).unwrap();
    assert_eq!(done, [1, 2]);
    assert_eq!((c.dirty_count(), d.posted()), (2, 2));
    // A block written again while its posted write is in flight is dirty again, and the
    // queue refuses to start an overlapping write until the first completes.
    c.get_mut(&mut d, 1).unwrap().fill(0x11);
    assert_eq!(c.dirty_count(), 3);
    assert_eq!(c.post_back(&mut d, [1], 8).unwrap(), [] as [u64; 0]);
    assert!(d.reap());
    // The queue's depth (3) stops the third.
    assert_eq!(c.post_back(&mut d, [1, 3, 4], 8).unwrap(), [1, 3, 4]);
    c.get_mut(&mut d, 2).unwrap().fill(0x22);
    assert_eq!(
        c.post_back(&mut d, [2], 8).unwrap(),
        [] as [u64; 0],
        "queue full"
    );
    assert_eq!(c.dirty_count(), 1);
    let m = d.into_inner();
    let firsts: Vec<u8> = m.bytes().chunks(1024).take(5).map(|b| b[0]).collect();
    assert_eq!(firsts, [0, 0x11, 2, 3, 4]);
}

#[test]
fn readahead_fills_the_cache_and_never_brings_back_overwritten_data() {
    use crate::block::QueueDisk;
    let mut d = QueueDisk::new(numbered_disk(), 8);
    let mut c = BlockCache::new(1024, 8 * 1024);
    c.get(&mut d, 2).unwrap();
    // Block 2 is cached: only 1 and 3..=5 are read, as two posted reads.
    assert_eq!(c.readahead(&mut d, &[(1, 5)], 4096).unwrap(), 4);
    assert_eq!((d.reads_started, d.posted()), (2, 2));
    // Asking again while they are in flight starts nothing new.
    assert_eq!(c.readahead(&mut d, &[(1, 5)], 4096).unwrap(), 4);
    assert_eq!(d.reads_started, 2);
    assert!(d.reap());
    assert_eq!(c.absorb(&mut d), 4);
    let misses = c.stats().misses;
    for b in 1..6 {
        assert_eq!(c.get(&mut d, b).unwrap()[0], b as u8);
    }
    assert_eq!(c.stats().misses, misses, "all from the cache");
    // Data read ahead, then overwritten on the disk by a batch before it was taken: it
    // is dropped, so the cache never holds the old contents; read-ahead the batch does
    // not touch (block 13) stays.
    c.readahead(&mut d, &[(8, 1), (13, 1)], 1024).unwrap();
    assert!(d.reap());
    c.put(&mut d, 8, &[0xAB; 1024]).unwrap();
    c.write_back(&mut d, |_| true).unwrap();
    c.invalidate(8);
    assert_eq!(c.absorb(&mut d), 1, "block 13 only");
    assert_eq!(c.get(&mut d, 8).unwrap()[0], 0xAB);
    assert_eq!(c.get(&mut d, 13).unwrap()[0], 13);
    // Same with a posted write over completed readahead: only the overlapped block goes.
    c.readahead(&mut d, &[(10, 2)], 1024).unwrap();
    assert!(d.reap());
    c.put(&mut d, 10, &[0xCD; 1024]).unwrap();
    assert_eq!(c.post_back(&mut d, [10], 8).unwrap(), [10]);
    c.invalidate(10);
    assert_eq!(c.absorb(&mut d), 1, "block 11 only");
    assert_eq!(c.get(&mut d, 10).unwrap()[0], 0xCD);
    assert_eq!(c.get(&mut d, 11).unwrap()[0], 11);
}

#[test]
fn a_failed_posted_write_is_reported_by_the_next_flush() {
    use crate::block::QueueDisk;
    let mut d = QueueDisk::new(MemDisk::new(alloc::vec![0u8; 1024 * 16]), 8);
    d.fail_posted(4..5);
    let mut c = BlockCache::new(1024, 8 * 1024);
    c.get_zeroed_mut(&mut d, 2).unwrap().fill(7);
    assert_eq!(c.post_back(&mut d, [2], 8).unwrap(), [2]);
    // A read completes the posted write first; its error waits for the flush.
    c.get(&mut d, 5).unwrap();
    assert_eq!(d.flush(), Err(DevError::Io { lba: 4, code: -5 }));
    assert_eq!(d.flush(), Ok(()), "reported once");
}
