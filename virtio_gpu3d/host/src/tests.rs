// SPDX-License-Identifier: GPL-2.0
use crate::protocol::*;

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

#[test]
fn commands_have_the_uapi_sizes_and_types() {
    let p = ResourceParams::default();
    let t = Transfer::default();
    for (c, ty, size) in [
        (Command::get_capset_info(3), cmd::GET_CAPSET_INFO, 32),
        (Command::get_capset(2, 2), cmd::GET_CAPSET, 32),
        (Command::ctx_create(1, b"x", 0), cmd::CTX_CREATE, 96),
        (Command::ctx_destroy(1), cmd::CTX_DESTROY, 24),
        (
            Command::ctx_resource(1, 2, true),
            cmd::CTX_ATTACH_RESOURCE,
            32,
        ),
        (
            Command::ctx_resource(1, 2, false),
            cmd::CTX_DETACH_RESOURCE,
            32,
        ),
        (
            Command::resource_create_3d(5, &p),
            cmd::RESOURCE_CREATE_3D,
            72,
        ),
        (
            Command::attach_backing(5, 1),
            cmd::RESOURCE_ATTACH_BACKING,
            32,
        ),
        (Command::detach_backing(5), cmd::RESOURCE_DETACH_BACKING, 32),
        (Command::resource_unref(5), cmd::RESOURCE_UNREF, 32),
        (
            Command::transfer_3d(true, 5, &t),
            cmd::TRANSFER_TO_HOST_3D,
            72,
        ),
        (
            Command::transfer_3d(false, 5, &t),
            cmd::TRANSFER_FROM_HOST_3D,
            72,
        ),
        (Command::submit_3d(64), cmd::SUBMIT_3D, 32),
        (
            Command::resource_create_2d(5, 1, 64, 64),
            cmd::RESOURCE_CREATE_2D,
            40,
        ),
        (
            Command::transfer_to_host_2d(5, &t),
            cmd::TRANSFER_TO_HOST_2D,
            56,
        ),
    ] {
        assert_eq!(c.as_bytes().len(), size, "type {ty:#x}");
        assert_eq!(le32(c.as_bytes(), 0), ty);
        assert_eq!(c.ty(), ty);
        assert_eq!(c.fence(), None);
    }
}

#[test]
fn header_fields_sit_where_the_device_reads_them() {
    let c = Command::submit_3d(128)
        .with_ctx(7)
        .with_fence(0x1_0000_0002);
    let b = c.as_bytes();
    assert_eq!(le32(b, 4), FLAG_FENCE);
    assert_eq!(le64(b, 8), 0x1_0000_0002);
    assert_eq!(le32(b, 16), 7);
    assert_eq!(b[20], 0, "ring_idx");
    assert_eq!(le32(b, 24), 128);
    assert_eq!(c.fence(), Some(0x1_0000_0002));
}

#[test]
fn ctx_create_cuts_the_name_and_masks_the_capset() {
    let long = [b'a'; 100];
    let c = Command::ctx_create(9, &long, 0x1234);
    let b = c.as_bytes();
    assert_eq!(le32(b, 16), 9, "ctx_id in the header");
    assert_eq!(le32(b, 24), 63, "nlen");
    assert_eq!(le32(b, 28), 0x34, "context_init keeps the capset id bits");
    assert!(b[32..95].iter().all(|&x| x == b'a'));
    assert_eq!(b[95], 0, "the name stays NUL-terminated");
}

#[test]
fn resource_create_3d_and_transfer_fields() {
    let p = ResourceParams {
        target: 2,
        format: 67,
        bind: 2,
        width: 64,
        height: 32,
        depth: 1,
        array_size: 1,
        last_level: 0,
        nr_samples: 0,
        flags: 0,
    };
    let b = Command::resource_create_3d(11, &p);
    let b = b.as_bytes();
    assert_eq!(
        [
            le32(b, 24),
            le32(b, 28),
            le32(b, 32),
            le32(b, 36),
            le32(b, 40),
            le32(b, 44)
        ],
        [11, 2, 67, 2, 64, 32]
    );
    let t = Transfer {
        bx: [1, 2, 3, 4, 5, 6],
        level: 1,
        offset: 4096,
        stride: 256,
        layer_stride: 8192,
    };
    let c = Command::transfer_3d(false, 11, &t);
    let b = c.as_bytes();
    for (i, v) in [1, 2, 3, 4, 5, 6].into_iter().enumerate() {
        assert_eq!(le32(b, 24 + 4 * i), v);
    }
    assert_eq!(le64(b, 48), 4096);
    assert_eq!(
        [le32(b, 56), le32(b, 60), le32(b, 64), le32(b, 68)],
        [11, 1, 256, 8192]
    );
}

#[test]
fn resource_create_2d_and_transfer_2d_fields() {
    let c = Command::resource_create_2d(12, 1, 64, 32);
    let b = c.as_bytes();
    assert_eq!(
        [le32(b, 24), le32(b, 28), le32(b, 32), le32(b, 36)],
        [12, 1, 64, 32]
    );
    let t = Transfer {
        bx: [1, 2, 3, 4, 5, 6],
        level: 0,
        offset: 8192,
        stride: 0,
        layer_stride: 0,
    };
    let c = Command::transfer_to_host_2d(12, &t);
    let b = c.as_bytes();
    // struct virtio_gpu_rect: x, y, width, height.
    assert_eq!(
        [le32(b, 24), le32(b, 28), le32(b, 32), le32(b, 36)],
        [1, 2, 4, 5]
    );
    assert_eq!(le64(b, 40), 8192);
    assert_eq!([le32(b, 48), le32(b, 52)], [12, 0], "resource id, padding");
}

#[test]
fn mem_entries_are_addr_length_padding() {
    let e = mem_entry(0x1234_5678_9000, 8192);
    assert_eq!(le64(&e, 0), 0x1234_5678_9000);
    assert_eq!(le32(&e, 8), 8192);
    assert_eq!(le32(&e, 12), 0);
}

fn resp(ty: u32, extra: &[u8]) -> Vec<u8> {
    let mut v = vec![0u8; HDR_SIZE];
    v[0..4].copy_from_slice(&ty.to_le_bytes());
    v.extend_from_slice(extra);
    v
}

#[test]
fn responses_map_to_errnos() {
    let ok = resp(cmd::RESP_OK_NODATA, &[]);
    assert_eq!(check_response(&ok, 24, cmd::RESP_OK_NODATA), Ok(()));
    assert_eq!(
        check_response(&ok, 23, cmd::RESP_OK_NODATA),
        Err(errno::EIO),
        "short answer"
    );
    assert_eq!(
        check_response(&ok, 24, cmd::RESP_OK_CAPSET),
        Err(errno::EIO),
        "wrong OK"
    );
    for (ty, e) in [
        (cmd::RESP_ERR_OUT_OF_MEMORY, errno::ENOMEM),
        (cmd::RESP_ERR_INVALID_RESOURCE_ID, errno::EINVAL),
        (cmd::RESP_ERR_INVALID_CONTEXT_ID, errno::EINVAL),
        (cmd::RESP_ERR_INVALID_PARAMETER, errno::EINVAL),
        (cmd::RESP_ERR_UNSPEC, errno::EIO),
        (0xdead, errno::EIO),
    ] {
        assert_eq!(
            check_response(&resp(ty, &[]), 24, cmd::RESP_OK_NODATA),
            Err(e),
            "{ty:#x}"
        );
    }
}

fn capset_info_resp(id: u32, ver: u32, size: u32) -> Vec<u8> {
    let mut extra = Vec::new();
    for v in [id, ver, size, 0] {
        extra.extend_from_slice(&v.to_le_bytes());
    }
    resp(cmd::RESP_OK_CAPSET_INFO, &extra)
}

#[test]
fn capset_info_is_decoded_and_bounded() {
    let r = capset_info_resp(CAPSET_VIRGL2, 2, 1024);
    assert_eq!(
        decode_capset_info(&r, 40),
        Ok(CapsetInfo {
            id: 2,
            max_version: 2,
            max_size: 1024
        })
    );
    assert_eq!(decode_capset_info(&r, 39), Err(errno::EIO), "short");
    assert_eq!(
        decode_capset_info(&capset_info_resp(1, 1, 0), 40),
        Err(errno::EIO),
        "empty"
    );
    assert_eq!(
        decode_capset_info(&capset_info_resp(1, 1, MAX_CAPSET_SIZE + 1), 40),
        Err(errno::EIO),
        "too large"
    );
    let data = resp(cmd::RESP_OK_CAPSET, &[1, 2, 3, 4]);
    assert_eq!(capset_data(&data, 28), Ok(&[1u8, 2, 3, 4][..]));
    assert_eq!(
        capset_data(&data, 26),
        Ok(&[1u8, 2][..]),
        "only what the device wrote"
    );
    assert_eq!(
        capset_data(&data, 1000),
        Ok(&[1u8, 2, 3, 4][..]),
        "never past the buffer"
    );
}

#[test]
fn get_caps_finds_id_and_version() {
    let caps = [
        CapsetInfo {
            id: 1,
            max_version: 1,
            max_size: 308,
        },
        CapsetInfo {
            id: 2,
            max_version: 2,
            max_size: 1024,
        },
    ];
    assert_eq!(find_capset(&caps, 2, 2), Some(caps[1]));
    assert_eq!(find_capset(&caps, 2, 1), Some(caps[1]), "an older version");
    assert_eq!(find_capset(&caps, 2, 3), None, "newer than the device");
    assert_eq!(find_capset(&caps, 4, 0), None, "unknown id");
}

#[test]
fn getparam_answers_as_the_c_driver() {
    let caps = DeviceCaps {
        virgl: true,
        resource_blob: true,
        context_init: false,
        capset_mask: 0b110,
    };
    assert_eq!(getparam(&caps, param::THREE_D_FEATURES), Ok(1));
    assert_eq!(
        getparam(&DeviceCaps::default(), param::THREE_D_FEATURES),
        Ok(0)
    );
    assert_eq!(getparam(&caps, param::CAPSET_QUERY_FIX), Ok(1));
    assert_eq!(
        getparam(&caps, param::RESOURCE_BLOB),
        Ok(0),
        "no blob ioctl yet"
    );
    assert_eq!(getparam(&caps, param::CONTEXT_INIT), Ok(0));
    assert_eq!(getparam(&caps, param::SUPPORTED_CAPSET_IDS), Ok(0b110));
    assert_eq!(getparam(&caps, param::BLOB_ALIGNMENT), Err(errno::ENOENT));
    assert_eq!(getparam(&caps, 0), Err(errno::EINVAL));
    assert_eq!(getparam(&caps, 10), Err(errno::EINVAL));
}

#[test]
fn backing_sizes_are_pages_and_bounded() {
    let p = ResourceParams {
        target: PIPE_TEXTURE_2D,
        ..Default::default()
    };
    assert_eq!(resource_backing_size(&p, 0, true, 4096), Ok(4096));
    assert_eq!(resource_backing_size(&p, 1, true, 4096), Ok(4096));
    assert_eq!(resource_backing_size(&p, 4097, true, 4096), Ok(8192));
    assert_eq!(
        resource_backing_size(&p, u32::MAX, true, 4096),
        Err(errno::E2BIG)
    );
    let deep = ResourceParams { depth: 2, ..p };
    assert_eq!(
        resource_backing_size(&deep, 4096, false, 4096),
        Err(errno::EINVAL)
    );
    assert_eq!(resource_backing_size(&deep, 4096, true, 4096), Ok(4096));
    let buffer = ResourceParams {
        target: PIPE_BUFFER,
        ..p
    };
    assert_eq!(
        resource_backing_size(&buffer, 4096, false, 4096),
        Err(errno::EINVAL)
    );
}

#[test]
fn transfers_take_no_strides_and_stay_inside() {
    let t = Transfer {
        bx: [0, 0, 0, 64, 64, 1],
        ..Default::default()
    };
    assert_eq!(check_transfer(&t, 16384), Ok(()));
    assert_eq!(
        check_transfer(&Transfer { stride: 256, ..t }, 16384),
        Err(errno::EINVAL)
    );
    assert_eq!(
        check_transfer(
            &Transfer {
                layer_stride: 1,
                ..t
            },
            16384
        ),
        Err(errno::EINVAL)
    );
    assert_eq!(
        check_transfer(&Transfer { offset: 16384, ..t }, 16384),
        Err(errno::EINVAL)
    );
    assert_eq!(
        check_transfer(&Transfer { offset: 16380, ..t }, 16384),
        Ok(())
    );
}

#[test]
fn transfers_2d_ignore_strides_and_stay_inside() {
    let t = Transfer {
        bx: [0, 0, 0, 16, 16, 1],
        stride: 64,
        layer_stride: 4096,
        ..Transfer::default()
    };
    assert_eq!(check_transfer_2d(&t, 4096), Ok(()));
    assert_eq!(check_transfer(&t, 4096), Err(errno::EINVAL));
    let t = Transfer { offset: 4096, ..t };
    assert_eq!(check_transfer_2d(&t, 4096), Err(errno::EINVAL));
}

#[test]
fn execbuffer_checks() {
    assert_eq!(check_execbuffer(0, 64, 2), Ok(()));
    assert_eq!(check_execbuffer(0, 0, 0), Err(errno::EINVAL), "empty");
    assert_eq!(check_execbuffer(0, 6, 0), Err(errno::EINVAL), "not dwords");
    assert_eq!(
        check_execbuffer(0, MAX_EXECBUFFER_SIZE + 4, 0),
        Err(errno::EINVAL)
    );
    assert_eq!(
        check_execbuffer(0, 64, MAX_BO_HANDLES + 1),
        Err(errno::EINVAL)
    );
    assert_eq!(
        check_execbuffer(0x80, 64, 0),
        Err(errno::EINVAL),
        "unknown flag"
    );
    assert_eq!(
        check_execbuffer(execbuf::RING_IDX, 64, 0),
        Err(errno::EINVAL),
        "no rings"
    );
    assert_eq!(check_execbuffer(execbuf::FENCE_FD_OUT, 64, 0), Ok(()));
    assert_eq!(
        check_execbuffer(execbuf::FENCE_FD_IN | execbuf::FENCE_FD_OUT, 64, 0),
        Ok(())
    );
}

#[test]
fn fences_complete_in_order() {
    let mut t = FenceTimeline::default();
    assert!(t.is_done(0), "no fence is always done");
    let a = t.issue();
    let b = t.issue();
    assert!(a < b);
    assert!(!t.is_done(a) && !t.is_done(b));
    t.complete(b);
    assert!(t.is_done(a), "a later fence covers an earlier one");
    assert!(t.is_done(b));
    t.complete(a);
    assert_eq!(t.completed, b, "never goes back");
    t.complete(b + 5);
    assert_eq!(t.completed, b, "a fence never issued is ignored");
}

#[test]
fn virgl_streams_are_walked_by_length() {
    let clear = virgl::header(virgl::CCMD_CLEAR, 0, 8);
    assert_eq!(virgl::split(clear), (virgl::CCMD_CLEAR, 0, 8));
    let mut s = vec![clear];
    s.extend([0u32; 8]);
    s.push(virgl::header(virgl::CCMD_SET_SUB_CTX, 0, 1));
    s.push(1);
    assert_eq!(virgl::count_commands(&s), Some(2));
    s.pop();
    assert_eq!(virgl::count_commands(&s), None, "a command past the end");
    assert_eq!(virgl::count_commands(&[]), Some(0));
}
