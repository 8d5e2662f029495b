// SPDX-License-Identifier: GPL-2.0
use crate::abi::{errno, FLAG_AUTOCLEAR, FLAG_READ_ONLY};
use crate::rules::*;
use crate::tests::Rng;

#[test]
fn partitions_take_minor_bits_up_to_disk_max_parts() {
    let p = |max_part| Params::validate(8, max_part, 128, 1, 4);
    assert_eq!(p(0).unwrap().part_shift(), 0);
    assert_eq!(p(0).unwrap().max_part(), 0);
    // Shown rounded up to 2^n - 1, as C exports it.
    for (given, shown) in [(1, 1), (2, 3), (5, 7), (7, 7), (8, 15), (255, 255)] {
        assert_eq!(p(given).unwrap().max_part(), shown, "max_part={given}");
    }
    assert!(!p(0).unwrap().partitions_always());
    // fls(): max_part rounds up to 2^n - 1 minors for partitions.
    for (max_part, shift) in [(1, 1), (3, 2), (4, 3), (15, 4), (16, 5), (255, 8)] {
        let params = p(max_part).unwrap();
        assert_eq!(params.part_shift(), shift, "max_part={max_part}");
        assert!(params.partitions_always());
        assert_eq!(params.max_devices(), 1 << (20 - shift));
    }
    // C refuses 1 << fls(max_part) above DISK_MAX_PARTS: 256 and more, up to u32::MAX (no
    // underflow of MINORBITS - part_shift).
    for max_part in [256, 511, 4096, 1 << 20, 1 << 31, u32::MAX] {
        assert_eq!(
            p(max_part),
            Err(ParamError::TooManyPartitions { max_part }),
            "max_part={max_part}"
        );
    }
    assert_eq!(
        ParamError::TooManyPartitions { max_part: 256 }.errno(),
        errno::EINVAL
    );
}

#[test]
fn max_loop_must_fit_the_minors() {
    assert!(Params::validate(1 << 20, 0, 128, 0, 1).is_ok());
    assert_eq!(
        Params::validate((1 << 20) + 1, 0, 128, 0, 1),
        Err(ParamError::TooManyDevices {
            max_loop: (1 << 20) + 1,
            fit: 1 << 20
        })
    );
    // max_part=255 leaves 12 bits of minors for devices.
    assert!(Params::validate(4096, 255, 128, 0, 1).is_ok());
    assert!(Params::validate(4097, 255, 128, 0, 1).is_err());
}

#[test]
fn queue_depth_and_poll_queues() {
    assert_eq!(Params::validate(8, 0, 0, 1, 4), Err(ParamError::ZeroDepth));
    let p = Params::validate(8, 0, 1, 0, 4).unwrap();
    assert_eq!((p.queue_depth(), p.tags(), p.poll_tags()), (1, 1, 0));
    // Reduced to what blk-mq allocates.
    let p = Params::validate(8, 0, u32::MAX, 2, 4).unwrap();
    assert_eq!(p.queue_depth(), BLK_MQ_MAX_DEPTH);
    // Every tag of the tag set: the default queue and each poll queue have a full depth.
    let p = Params::validate(8, 0, 128, 3, 4).unwrap();
    assert_eq!((p.tags(), p.poll_tags()), (128 * 4, 128 * 3));
    assert_eq!(
        Params::validate(8, 0, 128, 5, 4),
        Err(ParamError::TooManyPollQueues {
            poll_queues: 5,
            cpus: 4
        })
    );
    assert!(Params::validate(8, 0, 128, 4, 4).is_ok());
}

#[test]
fn param_errors_say_what_was_wrong() {
    let msg = ParamError::TooManyPartitions { max_part: 300 }.to_string();
    assert!(msg.contains("max_part=300") && msg.contains("255"), "{msg}");
    let msg = ParamError::TooManyDevices {
        max_loop: 9,
        fit: 8,
    }
    .to_string();
    assert!(msg.contains("max_loop=9") && msg.contains('8'), "{msg}");
    assert!(ParamError::ZeroDepth
        .to_string()
        .contains("hw_queue_depth=0"));
}

#[test]
fn device_numbers() {
    let p = Params::validate(8, 15, 128, 0, 1).unwrap();
    assert_eq!(p.minors(3), (3 << 4, 16));
    let devt = |major: u32, minor: u32| (major << 20) | minor;
    assert_eq!(p.index_of(devt(7, 3 << 4)), Some(3));
    // A partition stands for its disk.
    assert_eq!(p.index_of(devt(7, (3 << 4) + 2)), Some(3));
    assert_eq!(p.index_of(devt(8, 16)), None, "not a loop device");
    let p = Params::validate(8, 0, 128, 0, 1).unwrap();
    assert_eq!(p.minors(5), (5, 1));
    assert_eq!(p.index_of(devt(7, 0xfffff)), Some(0xfffff));
}

#[test]
fn block_size_rules() {
    assert_eq!(block_size_or_default(0, false, 4096), 512);
    assert_eq!(block_size_or_default(0, true, 4096), 4096);
    assert_eq!(block_size_or_default(2048, true, 4096), 2048);
    assert_eq!(
        check_block_size(1000, false, false, 512),
        Err(BlockSizeError::Invalid)
    );
    assert_eq!(check_block_size(1024, true, false, 4096), Ok(()));
    assert_eq!(
        check_block_size(1024, true, true, 4096),
        Err(BlockSizeError::BelowDirectIoGranule)
    );
    assert_eq!(check_block_size(8192, true, true, 4096), Ok(()));
}

#[test]
fn direct_io_at_attach_time() {
    use DirectIo::*;
    assert_eq!(direct_io_at_attach(true, false, true), On);
    assert_eq!(direct_io_at_attach(true, true, false), Refused);
    assert_eq!(direct_io_at_attach(false, true, true), On);
    assert_eq!(
        direct_io_at_attach(false, true, false),
        Off,
        "O_DIRECT: when possible"
    );
    assert_eq!(direct_io_at_attach(false, false, true), Off);
    assert_eq!(dma_alignment(false, 4095), 511);
    assert_eq!(dma_alignment(true, 4095), 4095);
    assert_eq!(dma_alignment(true, 3), 511);
}

#[test]
fn window() {
    assert!(within_window(0, 8, 8));
    assert!(!within_window(1, 8, 8));
    assert!(!within_window(u64::MAX, 2, u64::MAX));
    assert!(within_window(8, 0, 8));
}

#[test]
fn file_positions() {
    assert_eq!(file_position(0, 8, 8, 0), Some(0));
    assert_eq!(file_position(2, 8, 16, 4096), Some(1024 + 4096));
    assert_eq!(file_position(1, 8, 8, 0), None);
    // A flush's sector is -1: never a position, whatever the offset.
    assert_eq!(file_position(u64::MAX, 0, u64::MAX, 4096), None);
    assert_eq!(file_position(u64::MAX >> 9, 0, u64::MAX, 512), None);
    // Beyond loff_t.
    assert_eq!(file_position(1, 0, 8, i64::MAX as u64), None);
    assert_eq!(
        file_position(0, 0, 8, i64::MAX as u64),
        Some(i64::MAX as u64)
    );
}

#[test]
fn attach_and_detach() {
    use Status::*;
    assert_eq!(Unbound.may_attach(), Ok(()));
    for s in [Bound, Rundown, Deleting] {
        assert_eq!(s.may_attach(), Err(errno::EBUSY));
    }
    assert_eq!(Unbound.may_open(), Ok(()));
    assert_eq!(Bound.may_open(), Ok(()));
    assert_eq!(Rundown.may_open(), Err(errno::ENXIO));
    assert_eq!(Deleting.may_open(), Err(errno::ENXIO));
    // LOOP_CLR_FD marks the device for detach on last close; the only opener also shuts the door.
    assert_eq!(
        Bound.clear_fd(FLAG_READ_ONLY, 2),
        Ok((Bound, FLAG_READ_ONLY | FLAG_AUTOCLEAR))
    );
    assert_eq!(Bound.clear_fd(0, 1), Ok((Rundown, FLAG_AUTOCLEAR)));
    for s in [Unbound, Rundown, Deleting] {
        assert_eq!(s.clear_fd(0, 1), Err(errno::ENXIO));
    }
    // Last close.
    assert_eq!(Bound.last_close(FLAG_AUTOCLEAR), (Rundown, true));
    assert_eq!(Bound.last_close(0), (Bound, false));
    assert_eq!(Rundown.last_close(0), (Rundown, true));
    assert_eq!(Unbound.last_close(FLAG_AUTOCLEAR), (Unbound, false));
    // Removal: unbound and closed only.
    assert_eq!(Unbound.remove(0), Ok(Deleting));
    assert_eq!(Unbound.remove(1), Err(errno::EBUSY));
    assert_eq!(Bound.remove(0), Err(errno::EBUSY));
    assert_eq!(Rundown.remove(0), Err(errno::EBUSY));
    assert!(Unbound.is_free() && !Bound.is_free() && !Rundown.is_free());
}

#[test]
fn device_size_follows_offset_and_limit() {
    assert_eq!(device_sectors(1 << 20, 0, 0), 2048);
    assert_eq!(device_sectors(1 << 20, 4096, 0), 2040);
    assert_eq!(device_sectors(1 << 20, 4096, 8192), 16);
    assert_eq!(
        device_sectors(1 << 20, 2 << 20, 0),
        0,
        "offset beyond the file"
    );
    assert_eq!(device_sectors(1000, 0, 0), 1, "partial sectors are dropped");
    assert_eq!(
        device_sectors(1 << 20, 0, 1 << 30),
        2048,
        "a limit past the end changes nothing"
    );
    let mut rng = Rng(99);
    for _ in 0..10_000 {
        let (size, off, lim) = (rng.next() >> 20, rng.next() >> 22, rng.next() >> 22);
        let s = device_sectors(size, off, lim);
        assert!(s << 9 <= size.saturating_sub(off));
        if lim > 0 {
            assert!(s << 9 <= lim);
        }
    }
}

#[test]
fn direct_io_needs_support_size_and_alignment() {
    assert!(can_use_direct_io(true, 512, 512, 0));
    assert!(can_use_direct_io(true, 4096, 512, 1024));
    assert!(!can_use_direct_io(false, 4096, 512, 0));
    assert!(
        !can_use_direct_io(true, 512, 4096, 0),
        "blocks below the granule"
    );
    assert!(
        !can_use_direct_io(true, 4096, 4096, 512),
        "misaligned offset"
    );
    assert!(!can_use_direct_io(true, 4096, 0, 0));
}

#[test]
fn only_direct_reads_and_writes_go_inline_and_only_when_asked() {
    // Every combination: inline exactly for a direct read or write, when the module asks for
    // inline submission, except a write to a read-only device (failed on the worker).
    for bits in 0u32..32 {
        let [inline_dio, read_write, write, direct, read_only] =
            [0, 1, 2, 3, 4].map(|b| bits & (1 << b) != 0);
        let want = if inline_dio && read_write && direct && !(write && read_only) {
            Path::Inline
        } else {
            Path::Worker
        };
        assert_eq!(
            path(inline_dio, read_write, write, direct, read_only),
            want,
            "inline_dio={inline_dio} read_write={read_write} write={write} direct={direct} read_only={read_only}"
        );
    }
    // The cases that matter, spelt out.
    assert_eq!(
        path(true, true, false, true, false),
        Path::Inline,
        "direct read"
    );
    assert_eq!(
        path(true, true, true, true, false),
        Path::Inline,
        "direct write"
    );
    assert_eq!(
        path(false, true, false, true, false),
        Path::Worker,
        "worker-only"
    );
    assert_eq!(
        path(true, true, false, false, false),
        Path::Worker,
        "buffered"
    );
    assert_eq!(
        path(true, false, false, true, false),
        Path::Worker,
        "flush/discard"
    );
    assert_eq!(
        path(true, true, true, true, true),
        Path::Worker,
        "read-only write"
    );
    assert_eq!(
        path(true, true, false, true, true),
        Path::Inline,
        "read-only read"
    );
}

#[test]
fn inline_dio_is_on_unless_turned_off() {
    let p = Params::validate(8, 0, 128, 1, 4).unwrap();
    assert!(p.inline_dio());
    assert!(Params::DEFAULT.inline_dio());
    let off = p.with_inline_dio(false);
    assert!(!off.inline_dio());
    assert_eq!(off.with_inline_dio(true), p);
}
