#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A second, independent zonefs superblock writer and reader, as mkzonefs
would make one, written from the kernel's documented on-disk layout
(Documentation/filesystems/zonefs.rst and struct zonefs_super in
fs/zonefs/zonefs.h), not from foliofs's code. It checks foliofs's mkfs and
mount against the format itself.

struct zonefs_super, 4096 bytes, little-endian, at byte 0 of zone 0:
    0    __le32 s_magic        0x5a4f4653 ("SFOZ" on disk)
    4    __le32 s_crc          see below
    8    char   s_label[64]
    72   __u8   s_uuid[16]
    88   __le64 s_features     bit 0 aggr_cnv, 1 uid, 2 gid, 3 perm
    96   __le32 s_uid
    100  __le32 s_gid
    104  __le32 s_perm
    108  __u8   s_reserved[3988]   must be zero
The kernel (zonefs_read_super) sets s_crc to 0 and computes
crc32(~0U, super, 4096) with its crc32_le: the reflected CRC-32 with the
polynomial 0xedb88320, seeded with all ones and *not* inverted at the end
(that is, zlib's crc32 xor 0xffffffff).

  zonefs_sb.py write TARGET [--label L] [--uuid HEX] [--aggr-cnv] [--uid N]
                            [--gid N] [--perm OCTAL] [--features N]
      writes the block at offset 0 of TARGET (an image or a block device; a
      new file is created). Like mkzonefs, it does not touch the zones.
  zonefs_sb.py dump SOURCE
      prints the fields (magic, crc_ok, label, uuid, features, uid, gid,
      perm, reserved_zero), one "key value" a line.
  zonefs_sb.py selftest
"""
import os
import struct
import sys
import uuid as uuidlib

MAGIC = 0x5A4F4653
SIZE = 4096
F_AGGRCNV, F_UID, F_GID, F_PERM = 1, 2, 4, 8


def crc32_kernel(data, crc=0xFFFFFFFF):
    """The kernel's crc32_le(seed, data): no final inversion."""
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0xEDB88320 if crc & 1 else 0)
    return crc


def build(label=b"", uid=None, gid=None, perm=None, aggr_cnv=False, fs_uuid=None, features=0):
    features |= F_AGGRCNV if aggr_cnv else 0
    features |= F_UID if uid is not None else 0
    features |= F_GID if gid is not None else 0
    features |= F_PERM if perm is not None else 0
    if len(label) > 64:
        raise ValueError("the label has 64 bytes at most")
    b = bytearray(SIZE)
    struct.pack_into("<I", b, 0, MAGIC)
    b[8:8 + len(label)] = label
    b[72:88] = (fs_uuid or uuidlib.uuid4()).bytes
    struct.pack_into("<Q", b, 88, features)
    struct.pack_into("<I", b, 96, uid or 0)
    struct.pack_into("<I", b, 100, gid or 0)
    struct.pack_into("<I", b, 104, perm or 0)
    struct.pack_into("<I", b, 4, crc32_kernel(bytes(b)))
    return bytes(b)


def parse(b):
    b = bytearray(b[:SIZE])
    crc = struct.unpack_from("<I", b, 4)[0]
    z = bytearray(b)
    struct.pack_into("<I", z, 4, 0)
    return {
        "magic": "0x%08x" % struct.unpack_from("<I", b, 0)[0],
        "crc_ok": int(crc32_kernel(bytes(z)) == crc),
        "label": b[8:72].rstrip(b"\0").decode("ascii", "replace") or "-",
        "uuid": str(uuidlib.UUID(bytes=bytes(b[72:88]))),
        "features": "0x%x" % struct.unpack_from("<Q", b, 88)[0],
        "uid": struct.unpack_from("<I", b, 96)[0],
        "gid": struct.unpack_from("<I", b, 100)[0],
        "perm": "%o" % struct.unpack_from("<I", b, 104)[0],
        "reserved_zero": int(not any(b[108:])),
    }


def selftest():
    import zlib
    data = bytes(range(256)) * 16
    assert crc32_kernel(data) == zlib.crc32(data) ^ 0xFFFFFFFF
    blk = build(b"x" * 64, uid=1000, gid=2000, perm=0o600, aggr_cnv=True)
    p = parse(blk)
    assert p["crc_ok"] == 1 and p["features"] == "0xf" and p["uid"] == 1000, p
    assert p["gid"] == 2000 and p["perm"] == "600" and p["reserved_zero"] == 1, p
    assert blk[0:4] == b"SFOZ"
    print("ok")


def main(argv):
    if len(argv) < 2 or argv[1] not in ("write", "dump", "selftest"):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[1] == "selftest":
        selftest()
        return 0
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    target = argv[2]
    if argv[1] == "dump":
        with open(target, "rb") as f:
            for k, v in parse(f.read(SIZE)).items():
                print(k, v)
        return 0
    kw = {}
    args = argv[3:]
    while args:
        a = args.pop(0)
        if a == "--aggr-cnv":
            kw["aggr_cnv"] = True
        elif a in ("--uid", "--gid"):
            kw[a[2:]] = int(args.pop(0))
        elif a == "--perm":
            kw["perm"] = int(args.pop(0), 8)
        elif a == "--label":
            kw["label"] = args.pop(0).encode()
        elif a == "--uuid":
            kw["fs_uuid"] = uuidlib.UUID(args.pop(0))
        elif a == "--features":
            kw["features"] = int(args.pop(0), 0)
        else:
            print("zonefs_sb.py: unknown option %s" % a, file=sys.stderr)
            return 2
    blk = build(**kw)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, blk, 0)
        os.fsync(fd)
    finally:
        os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
