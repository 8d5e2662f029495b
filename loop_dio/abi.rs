// SPDX-License-Identifier: GPL-2.0

//! The loop driver's user ABI (`include/uapi/linux/loop.h`) and the rules it applies to the
//! values it is given. Only `core`: the kernel module and the host tests (`loop_dio/host`) build
//! this same file.
//!
//! Structures are decoded from and encoded to the bytes userspace passes, in the x86-64 layout;
//! the module checks every size and offset here against the kernel's own UAPI bindings at build
//! time.

/// `LO_NAME_SIZE`.
pub const NAME_SIZE: usize = 64;
/// `LO_KEY_SIZE`.
pub const KEY_SIZE: usize = 32;

/// `LO_FLAGS_READ_ONLY`.
pub const FLAG_READ_ONLY: u32 = 1;
/// `LO_FLAGS_AUTOCLEAR`.
pub const FLAG_AUTOCLEAR: u32 = 4;
/// `LO_FLAGS_PARTSCAN`.
pub const FLAG_PARTSCAN: u32 = 8;
/// `LO_FLAGS_DIRECT_IO`.
pub const FLAG_DIRECT_IO: u32 = 16;
/// Flags `LOOP_CONFIGURE` accepts.
pub const CONFIGURE_SETTABLE_FLAGS: u32 =
    FLAG_READ_ONLY | FLAG_AUTOCLEAR | FLAG_PARTSCAN | FLAG_DIRECT_IO;
/// Flags `LOOP_SET_STATUS` may set.
pub const SET_STATUS_SETTABLE_FLAGS: u32 = FLAG_AUTOCLEAR | FLAG_PARTSCAN;
/// Flags `LOOP_SET_STATUS` may clear.
pub const SET_STATUS_CLEARABLE_FLAGS: u32 = FLAG_AUTOCLEAR;

/// `/dev/loopN` ioctls.
pub const LOOP_SET_FD: u32 = 0x4C00;
/// Detach the backing file (on last close).
pub const LOOP_CLR_FD: u32 = 0x4C01;
/// Set status from the old `struct loop_info`.
pub const LOOP_SET_STATUS: u32 = 0x4C02;
/// Get status as the old `struct loop_info`.
pub const LOOP_GET_STATUS: u32 = 0x4C03;
/// Set status from `struct loop_info64`.
pub const LOOP_SET_STATUS64: u32 = 0x4C04;
/// Get status as `struct loop_info64`.
pub const LOOP_GET_STATUS64: u32 = 0x4C05;
/// Replace the backing file of a read-only device.
pub const LOOP_CHANGE_FD: u32 = 0x4C06;
/// Re-read the backing file's size.
pub const LOOP_SET_CAPACITY: u32 = 0x4C07;
/// Switch direct I/O on or off.
pub const LOOP_SET_DIRECT_IO: u32 = 0x4C08;
/// Change the logical block size.
pub const LOOP_SET_BLOCK_SIZE: u32 = 0x4C09;
/// Bind and configure in one call (`struct loop_config`).
pub const LOOP_CONFIGURE: u32 = 0x4C0A;
/// `/dev/loop-control`: add a device.
pub const LOOP_CTL_ADD: u32 = 0x4C80;
/// `/dev/loop-control`: remove a device.
pub const LOOP_CTL_REMOVE: u32 = 0x4C81;
/// `/dev/loop-control`: find or add an unbound device.
pub const LOOP_CTL_GET_FREE: u32 = 0x4C82;

/// Error numbers, as the kernel's (positive) errno values.
pub mod errno {
    /// No such device or address.
    pub const ENXIO: i32 = 6;
    /// Device or resource busy.
    pub const EBUSY: i32 = 16;
    /// Invalid argument.
    pub const EINVAL: i32 = 22;
    /// Value too large for the data type.
    pub const EOVERFLOW: i32 = 75;
}

/// `struct loop_info64` (232 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoopInfo64 {
    /// Device of the file system holding the backing file (encoded `dev_t`).
    pub device: u64,
    /// Inode of the backing file.
    pub inode: u64,
    /// Device number the backing file stands for.
    pub rdevice: u64,
    /// Byte offset into the backing file.
    pub offset: u64,
    /// Size limit in bytes; 0 means the rest of the file.
    pub sizelimit: u64,
    /// Device index.
    pub number: u32,
    /// Obsolete encryption type: only 0 (none) is accepted.
    pub encrypt_type: u32,
    /// Obsolete encryption key size.
    pub encrypt_key_size: u32,
    /// `LO_FLAGS_*`.
    pub flags: u32,
    /// The backing file's name, as userspace chose to record it.
    pub file_name: [u8; NAME_SIZE],
    /// Obsolete.
    pub crypt_name: [u8; NAME_SIZE],
    /// Obsolete.
    pub encrypt_key: [u8; KEY_SIZE],
    /// Obsolete.
    pub init: [u64; 2],
}

impl Default for LoopInfo64 {
    fn default() -> Self {
        Self {
            device: 0,
            inode: 0,
            rdevice: 0,
            offset: 0,
            sizelimit: 0,
            number: 0,
            encrypt_type: 0,
            encrypt_key_size: 0,
            flags: 0,
            file_name: [0; NAME_SIZE],
            crypt_name: [0; NAME_SIZE],
            encrypt_key: [0; KEY_SIZE],
            init: [0; 2],
        }
    }
}

fn get_u32(b: &[u8], at: usize) -> u32 {
    let mut v = [0u8; 4];
    v.copy_from_slice(&b[at..at + 4]);
    u32::from_ne_bytes(v)
}

fn get_u64(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_ne_bytes(v)
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_ne_bytes());
}

fn get_array<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut v = [0u8; N];
    v.copy_from_slice(&b[at..at + N]);
    v
}

/// Field offsets of `struct loop_info64`.
pub mod info64 {
    /// `lo_device`.
    pub const DEVICE: usize = 0;
    /// `lo_inode`.
    pub const INODE: usize = 8;
    /// `lo_rdevice`.
    pub const RDEVICE: usize = 16;
    /// `lo_offset`.
    pub const OFFSET: usize = 24;
    /// `lo_sizelimit`.
    pub const SIZELIMIT: usize = 32;
    /// `lo_number`.
    pub const NUMBER: usize = 40;
    /// `lo_encrypt_type`.
    pub const ENCRYPT_TYPE: usize = 44;
    /// `lo_encrypt_key_size`.
    pub const ENCRYPT_KEY_SIZE: usize = 48;
    /// `lo_flags`.
    pub const FLAGS: usize = 52;
    /// `lo_file_name`.
    pub const FILE_NAME: usize = 56;
    /// `lo_crypt_name`.
    pub const CRYPT_NAME: usize = 120;
    /// `lo_encrypt_key`.
    pub const ENCRYPT_KEY: usize = 184;
    /// `lo_init`.
    pub const INIT: usize = 216;
    /// `sizeof(struct loop_info64)`.
    pub const SIZE: usize = 232;
}

impl LoopInfo64 {
    /// Decodes the structure from userspace's bytes.
    pub fn decode(b: &[u8; info64::SIZE]) -> Self {
        Self {
            device: get_u64(b, info64::DEVICE),
            inode: get_u64(b, info64::INODE),
            rdevice: get_u64(b, info64::RDEVICE),
            offset: get_u64(b, info64::OFFSET),
            sizelimit: get_u64(b, info64::SIZELIMIT),
            number: get_u32(b, info64::NUMBER),
            encrypt_type: get_u32(b, info64::ENCRYPT_TYPE),
            encrypt_key_size: get_u32(b, info64::ENCRYPT_KEY_SIZE),
            flags: get_u32(b, info64::FLAGS),
            file_name: get_array(b, info64::FILE_NAME),
            crypt_name: get_array(b, info64::CRYPT_NAME),
            encrypt_key: get_array(b, info64::ENCRYPT_KEY),
            init: [get_u64(b, info64::INIT), get_u64(b, info64::INIT + 8)],
        }
    }

    /// Encodes the structure for userspace.
    pub fn encode(&self) -> [u8; info64::SIZE] {
        let mut b = [0u8; info64::SIZE];
        put_u64(&mut b, info64::DEVICE, self.device);
        put_u64(&mut b, info64::INODE, self.inode);
        put_u64(&mut b, info64::RDEVICE, self.rdevice);
        put_u64(&mut b, info64::OFFSET, self.offset);
        put_u64(&mut b, info64::SIZELIMIT, self.sizelimit);
        put_u32(&mut b, info64::NUMBER, self.number);
        put_u32(&mut b, info64::ENCRYPT_TYPE, self.encrypt_type);
        put_u32(&mut b, info64::ENCRYPT_KEY_SIZE, self.encrypt_key_size);
        put_u32(&mut b, info64::FLAGS, self.flags);
        b[info64::FILE_NAME..info64::FILE_NAME + NAME_SIZE].copy_from_slice(&self.file_name);
        b[info64::CRYPT_NAME..info64::CRYPT_NAME + NAME_SIZE].copy_from_slice(&self.crypt_name);
        b[info64::ENCRYPT_KEY..info64::ENCRYPT_KEY + KEY_SIZE].copy_from_slice(&self.encrypt_key);
        put_u64(&mut b, info64::INIT, self.init[0]);
        put_u64(&mut b, info64::INIT + 8, self.init[1]);
        b
    }

    /// The checks `LOOP_SET_STATUS*` and `LOOP_CONFIGURE` make before taking the values: the
    /// removed encryption types are refused, and offsets must fit a signed 64-bit file offset.
    pub fn validate(&self) -> Result<(), i32> {
        if self.encrypt_key_size as usize > KEY_SIZE || self.encrypt_type != 0 {
            return Err(errno::EINVAL);
        }
        if self.offset > i64::MAX as u64 || self.sizelimit > i64::MAX as u64 {
            return Err(errno::EOVERFLOW);
        }
        Ok(())
    }

    /// The recorded file name, always NUL-terminated.
    pub fn terminated_file_name(&self) -> [u8; NAME_SIZE] {
        let mut name = self.file_name;
        name[NAME_SIZE - 1] = 0;
        name
    }
}

/// Field offsets of `struct loop_config`.
pub mod config {
    /// `fd`.
    pub const FD: usize = 0;
    /// `block_size`.
    pub const BLOCK_SIZE: usize = 4;
    /// `info`.
    pub const INFO: usize = 8;
    /// `sizeof(struct loop_config)`.
    pub const SIZE: usize = 304;
}

/// `struct loop_config`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoopConfig {
    /// The backing file's descriptor.
    pub fd: u32,
    /// Logical block size; 0 picks the default.
    pub block_size: u32,
    /// The initial status.
    pub info: LoopInfo64,
}

impl LoopConfig {
    /// Decodes the structure from userspace's bytes (the reserved tail is ignored, as in C).
    pub fn decode(b: &[u8; config::SIZE]) -> Self {
        Self {
            fd: get_u32(b, config::FD),
            block_size: get_u32(b, config::BLOCK_SIZE),
            info: LoopInfo64::decode(&get_array(b, config::INFO)),
        }
    }
}

/// Field offsets of the old `struct loop_info` on x86-64 (`__kernel_old_dev_t` and `long` are
/// 64 bits wide, `int` 32).
pub mod info_old {
    /// `lo_number`.
    pub const NUMBER: usize = 0;
    /// `lo_device`.
    pub const DEVICE: usize = 8;
    /// `lo_inode`.
    pub const INODE: usize = 16;
    /// `lo_rdevice`.
    pub const RDEVICE: usize = 24;
    /// `lo_offset`.
    pub const OFFSET: usize = 32;
    /// `lo_encrypt_type`.
    pub const ENCRYPT_TYPE: usize = 36;
    /// `lo_encrypt_key_size`.
    pub const ENCRYPT_KEY_SIZE: usize = 40;
    /// `lo_flags`.
    pub const FLAGS: usize = 44;
    /// `lo_name`.
    pub const NAME: usize = 48;
    /// `sizeof(struct loop_info)`.
    pub const SIZE: usize = 168;
}

/// Converts an old `struct loop_info` (as bytes) to the 64-bit form, as `LOOP_SET_STATUS` does:
/// no size limit, the offset sign-extended from a C `int`, the encryption fields not carried
/// over (C's `loop_info64_from_old()` leaves them 0, so the old call ignores them).
pub fn info64_from_old(b: &[u8; info_old::SIZE]) -> LoopInfo64 {
    LoopInfo64 {
        number: get_u32(b, info_old::NUMBER),
        device: get_u64(b, info_old::DEVICE),
        inode: get_u64(b, info_old::INODE),
        rdevice: get_u64(b, info_old::RDEVICE),
        offset: i64::from(get_u32(b, info_old::OFFSET) as i32) as u64,
        flags: get_u32(b, info_old::FLAGS),
        file_name: get_array(b, info_old::NAME),
        ..LoopInfo64::default()
    }
}

/// Converts to an old `struct loop_info` (as bytes) for `LOOP_GET_STATUS`: `EOVERFLOW` when the
/// offset does not fit its `int`.
pub fn info64_to_old(info: &LoopInfo64) -> Result<[u8; info_old::SIZE], i32> {
    let offset = info.offset as i32;
    if i64::from(offset) as u64 != info.offset {
        return Err(errno::EOVERFLOW);
    }
    let mut b = [0u8; info_old::SIZE];
    put_u32(&mut b, info_old::NUMBER, info.number);
    put_u64(&mut b, info_old::DEVICE, info.device);
    put_u64(&mut b, info_old::INODE, info.inode);
    put_u64(&mut b, info_old::RDEVICE, info.rdevice);
    put_u32(&mut b, info_old::OFFSET, offset as u32);
    put_u32(&mut b, info_old::FLAGS, info.flags);
    b[info_old::NAME..info_old::NAME + NAME_SIZE].copy_from_slice(&info.file_name);
    Ok(b)
}

/// A device number as `stat` reports it to userspace (`huge_encode_dev()`), from the kernel's
/// internal `dev_t` (major in the top 12 bits, minor in the low 20).
pub fn encode_dev(dev: u32) -> u64 {
    let major = dev >> 20;
    let minor = dev & 0xfffff;
    u64::from((minor & 0xff) | (major << 8) | ((minor & !0xff) << 12))
}

/// Applies `LOOP_SET_STATUS`'s flag rules: only autoclear may be cleared, only autoclear and
/// partscan set.
pub fn set_status_flags(current: u32, requested: u32) -> u32 {
    (current & !SET_STATUS_CLEARABLE_FLAGS) | (requested & SET_STATUS_SETTABLE_FLAGS)
}
