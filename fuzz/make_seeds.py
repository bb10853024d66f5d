#!/usr/bin/env python3
"""Writes valid update messages (wire format v1, see src/sharing/codec.rs) as a fuzz seed corpus."""
import os
import struct

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds")


def header(fmt, n, tau, entries, origin=1, step=7):
    return b"SU" + bytes([1, fmt]) + struct.pack("<IfIIQ", n, tau, entries, origin, step)


def varint(v):
    b = bytearray()
    while v >= 0x80:
        b.append((v & 0x7F) | 0x80)
        v >>= 7
    b.append(v)
    return bytes(b)


# sparse: +tau at 2, -tau at 3, +tau at 200 of 300
sparse = header(0, 300, 1e-3, 3) + varint(2 << 1) + varint(1) + varint(196 << 1)
# bitmap: 10 parameters, +tau at 0, -tau at 5
bits = bytearray(3)
bits[0] |= 1
bits[1] |= 2 << 2
bitmap = header(1, 10, 0.5, 2) + bytes(bits)
dense = header(2, 4, 0.0, 4) + struct.pack("<4f", 1.0, -2.0, 0.5, 0.0)
# values (top-k): 1.5 at 2, -2.0 at 200 of 300, scaled by 0.5
values = header(3, 300, 0.5, 2) + varint(2) + struct.pack("<e", 1.5) + varint(197) + struct.pack("<e", -2.0)
# dense f16 and bf16 (bf16: the high half of an f32)
half = header(4, 4, 0.0, 4) + struct.pack("<4e", 1.0, -2.0, 0.5, 0.0)
bf16 = header(5, 4, 0.0, 4) + b"".join(struct.pack("<f", v)[2:] for v in (1.0, -2.0, 0.5, 0.0))
for name, data in [("sparse", sparse), ("bitmap", bitmap), ("dense", dense), ("values", values),
                   ("half", half), ("bf16", bf16)]:
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
print("wrote", len(os.listdir(out)), "seeds to", out)
