#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (native/fuzz/corpus/TARGET/).

Each seed is a short operation sequence in the input format documented at the
top of the target's source (native/fuzz/fuzz_*.cc, fuzz_overlay.h), chosen to
reach the interesting paths at once: learning and floods, VLAN trunks, port
security, ARP/ND resolution, VXLAN decapsulation and encapsulation, echo, and
commands racing traffic. libFuzzer mutates from there. Run it after changing
an input format; the output is committed.
"""
import os
import struct
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "native", "fuzz", "corpus")


def u16(v):
    return struct.pack(">H", v & 0xFFFF)


def u32(v):
    return struct.pack(">I", v & 0xFFFFFFFF)


def payload(n, seed=1):
    # Any bytes but 0xDB (the harness rewrites it anyway).
    return bytes(((i * 7 + seed) % 0xDA) for i in range(n))


def host_frame(hdr, n, seed=1):
    """hdr, len(u16), bytes: a frame whose MACs the harness may replace."""
    return bytes([hdr]) + u16(n) + payload(n, seed)


def hosts(dst, src, vlan=None):
    """hdr byte: MACs from the host set (7 = broadcast), optional VLAN tag."""
    h = 0x80 | (dst & 7) | ((src & 7) << 3)
    if vlan is not None:
        h |= 0x40 | (0x20 if vlan else 0)
    return h


# ------------------------------------------------------------ fuzz_local

def local_seeds():
    burst = lambda port, frames: bytes([0, port, len(frames) - 1]) + b"".join(frames)
    clock = lambda ms: bytes([1]) + u16(ms)
    link = lambda port, up: bytes([2, port, 0x80 if up else 0])
    s = {}
    # Learning, flood, unicast back, aging.
    s["learn-age"] = (burst(0, [host_frame(hosts(7, 0), 64)]) + burst(1, [host_frame(hosts(0, 1), 64)]) +
                      burst(0, [host_frame(hosts(1, 0), 128)]) + clock(3000) + burst(0, [host_frame(hosts(1, 0), 64)]))
    # Trunks: tagged frames both ways, VLAN 10 and 20.
    s["trunk"] = (burst(2, [host_frame(hosts(7, 2, 0), 80), host_frame(hosts(7, 3, 1), 80)]) +
                  burst(4, [host_frame(hosts(2, 4, 1), 80), host_frame(hosts(7, 4), 60)]) +
                  burst(0, [host_frame(hosts(2, 0), 64)]))
    # Port security, MTU, MAC limit, link flap, backpressure.
    s["limits"] = (burst(3, [host_frame(hosts(7, 0), 64), host_frame(hosts(7, 2), 64), host_frame(hosts(0, 0), 300)]) +
                   burst(1, [host_frame(hosts(7, i), 64) for i in range(6)]) + link(0, False) +
                   burst(1, [host_frame(hosts(7, 1), 64)]) + link(0, True) + bytes([3]) +
                   burst(2, [host_frame(hosts(7, 5, 0), 1500)] * 6))
    s["runts"] = burst(0, [host_frame(0, n) for n in (0, 1, 13, 14, 17, 18)])
    return s


# ------------------------------------------------------------ underlay frames (fuzz_overlay.h)

def vxlan(v6, sel, inner, vni_sel=0, flags=0, sport=50000):
    b = bytes([2 if v6 else 1, sel, flags]) + u16(sport)
    return b + bytes([vni_sel, 0]) + inner  # VNI choice, outer MAC choice (ours), inner


def arp(sel, op, pad=None):
    b = bytes([3, sel, op])
    if op & 32:
        b += bytes([len(pad)]) + pad
    return b


def nd(sel, kind, flags=0x60):
    b = bytes([4, sel, kind])
    if kind & 1:
        b += bytes([flags])
    return b + bytes([0])  # outer MAC choice


def echo(sel, kind, n):
    return bytes([5, sel, kind]) + u32(0x00010001) + u16(n) + payload(n, 3)


def underlay(frames):
    return bytes([0, len(frames) - 1]) + b"".join(frames)


def local(port, frames):
    return bytes([1, port, len(frames) - 1]) + b"".join(frames)


ARP_REPLY_A = arp(1, 0x89)           # peer A (198.18.0.2) answers, to our MAC
ARP_REQUEST = arp(3, 0x00)           # a stranger asks for us: 42 bytes, broadcast
NA_A6 = nd(0x11, 0x07)               # peer A6 advertises itself, with its MAC
NS_US = nd(0x01, 0x0A)               # peer A6 solicits our address (solicited-node group)


def uplink_seeds():
    clock = lambda ms: bytes([2]) + u16(ms)
    s = {}
    s["arp-vxlan4"] = (bytes([0]) + underlay([ARP_REPLY_A, ARP_REQUEST]) +
                       underlay([vxlan(False, 1, host_frame(hosts(7, 4), 64))]) +
                       local(0, [host_frame(hosts(4, 0), 64), host_frame(hosts(6, 0), 100)]) +
                       clock(31000) + underlay([ARP_REPLY_A]))
    s["nd-vxlan6"] = (bytes([0]) + underlay([NA_A6, NS_US]) +
                      underlay([vxlan(True, 1, host_frame(hosts(0, 5), 64), flags=0x08)]) +
                      local(0, [host_frame(hosts(5, 0), 64)]) + clock(5000))
    s["echo"] = bytes([2]) + underlay([echo(1, 0, 56), echo(1, 1, 56), echo(0x21, 2, 8)])
    s["unknown-peers"] = (bytes([1]) + underlay([vxlan(False, 3, host_frame(hosts(0, 4), 64)),
                                                 vxlan(False, 6, host_frame(hosts(0, 4), 64)),
                                                 vxlan(True, 7, host_frame(hosts(0, 5), 64), flags=0x08)]) +
                          local(2, [host_frame(hosts(7, 2, 1), 64)]) + bytes([3, 0]) + clock(200) + bytes([3, 0x80]))
    return s


# ------------------------------------------------------------ fuzz_commands

def commands_seeds():
    cmd = lambda sel, args=b"": bytes([0, sel]) + args
    q_local = lambda port, frames: bytes([0x41, port, len(frames) - 1]) + b"".join(frames)
    q_under = lambda frames: bytes([0x42, len(frames) - 1]) + b"".join(frames)
    clock = lambda ms: bytes([3]) + u16(ms)
    s = {}
    # Ports deleted and re-created while their frames are queued.
    s["port-churn"] = (bytes([0]) + q_local(0, [host_frame(hosts(7, 0), 64)] * 4) + cmd(5, bytes([0])) +
                       cmd(3, bytes([0, 1, 3, 1, 0x00]) + u16(1432)) + q_local(1, [host_frame(hosts(7, 1), 64)]) +
                       cmd(4, bytes([1, 0x44]) + u16(1432) + bytes([2])) + clock(200))
    # Peers, remote MACs, the uplink going and coming back.
    s["overlay-churn"] = (bytes([0]) + q_under([ARP_REPLY_A, vxlan(False, 1, host_frame(hosts(0, 4), 64))]) +
                          cmd(10, bytes([0, 1])) + cmd(9, bytes([0, 3])) + cmd(11, bytes([0, 5, 0x83])) +
                          cmd(7, bytes([0, 5])) + cmd(10, bytes([0, 0x85])) + cmd(10, bytes([1, 2])) +
                          cmd(10, bytes([0, 3])) + cmd(12) + cmd(13, bytes([0])) + cmd(14, bytes([1, 0])) + clock(1500))
    # Switches: create, set, static MACs, flush, delete (static remote MAC
    # included: its VTEP must be released, issue 10 bug 13).
    s["switch-churn"] = (bytes([0]) + cmd(0, bytes([2, 0, 10, 20])) + cmd(1, bytes([2, 5, 4, 3, 7])) +
                         cmd(11, bytes([2, 6, 3])) + cmd(6, bytes([0, 0, 0])) + cmd(8, bytes([0, 0])) +
                         cmd(2, bytes([2])) + clock(100) + cmd(2, bytes([0])) + cmd(17))
    # vpcctl capture and trace while their port and switch are deleted.
    local = lambda port, frames: bytes([1, port, len(frames) - 1]) + b"".join(frames)
    s["observe-churn"] = (bytes([0]) + cmd(15, bytes([0x1A, 0, 2]) + u16(199)) + cmd(16, bytes([2, 10, 0])) +
                          local(0, [host_frame(hosts(7, 0), 64), host_frame(hosts(1, 0), 300)]) + cmd(5, bytes([0])) +
                          cmd(15, bytes([0x1C, 1, 3]) + u16(65534)) + local(1, [host_frame(hosts(7, 2), 64)] * 3) +
                          cmd(2, bytes([0])) + local(1, [host_frame(hosts(7, 2), 64)]) + cmd(15, bytes([1])) +
                          cmd(16, bytes([1])) + cmd(17))
    return s


# vhost: the hostile-guest ring target (native/fuzz/fuzz_vhost.cc).
def vq_desc(i, off, ln, flags=0, nxt=0):
    return bytes([1]) + u16(i) + bytes([0]) + u16(off) + u16(flags) + u16(ln) + u16(nxt)


def vq_avail(slot, head, add=1):
    return bytes([2]) + u16(slot) + u16(head) + u16(add)


def vq_write(off, data):
    return bytes([0, 0]) + u16(off) + bytes([len(data)]) + data


def le_desc(addr, ln, flags, nxt):
    return struct.pack("<QIHH", addr, ln, flags, nxt)


def vhost_seeds():
    head = bytes([0x0F, 8]) + u16(0) + u16(0)  # mrg, indirect, event_idx, 12-byte header; 256 entries
    g0 = 0x100000
    s = {}
    s["tx-plain"] = head + vq_desc(0, 0x4000, 74) + vq_avail(0, 0) + bytes([3, 32])
    s["rx-mergeable"] = (head + vq_desc(0, 0x5000, 1024, 2) + vq_desc(1, 0x5400, 1024, 2) + vq_avail(0, 0) +
                         vq_avail(1, 1) + bytes([4, 1]) + u16(1500) + bytes([1]) + bytes([4, 0]) + u16(60) + bytes([0]))
    table = le_desc(g0 + 0x7000, 12, 1, 1) + le_desc(g0 + 0x7100, 100, 1, 2) + le_desc(g0 + 0x7200, 50, 0, 0)
    s["tx-indirect"] = head + vq_write(0x6000, table) + vq_desc(0, 0x6000, 48, 4) + vq_avail(0, 0) + bytes([3, 8])
    s["tx-loop"] = head + vq_desc(0, 0x4000, 20, 1, 1) + vq_desc(1, 0x4100, 20, 1, 0) + vq_avail(0, 0) + bytes([3, 8])
    s["rx-legacy"] = (bytes([0x00, 4]) + u16(0xFFFE) + u16(7) + vq_desc(3, 0x5000, 80, 2) + vq_avail(14, 3, 0x8000 | 0xFFFF) +
                      bytes([4, 0]) + u16(60) + bytes([0]))
    return s


# offload: guest frames with virtio-net offload state (native/fuzz/fuzz_offload.cc).
def guest(dst, kind, plen, v6=False, udp=False, mss=None, opts=0, extra=b""):
    sel = (1 if v6 else 0) | (2 if udp else 0) | ((dst & 7) << 2)
    b = bytes([sel, kind]) + u16(plen) + u32(0x5A3C1E0F)
    b += bytes([0]) if mss is None else bytes([200]) + u16(mss)
    if not udp:
        b += bytes([opts])
    return b + extra


def super_frame(form, n, seg, last, dst):
    """op 4: a tunnel super-frame from the peer VTEP."""
    return bytes([4, form, n - 1]) + u16(seg - 1) + u16(last - 1) + bytes([dst])


def offload_seeds():
    burst = lambda port, frames: bytes([0, port, len(frames) - 1]) + b"".join(frames)
    s = {}
    # A TSO4 super-frame from the all-offload guest to every kind of port,
    # the peer VTEP and a flood.
    s["tso4-everywhere"] = bytes([0]) + burst(0, [guest(d, 2, 20000, opts=3) for d in (1, 2, 3, 4, 5, 6, 7)])
    # TSO6 from the trunk; USO and checksum-partial UDP; odd segment sizes.
    s["tso6-trunk-uso"] = (bytes([2]) + burst(4, [guest(d, 2, 30000, v6=True) for d in (0, 1, 5, 6)]) +
                           burst(0, [guest(1, 1, 1000, udp=True), guest(2, 1, 1000, udp=True, v6=True),
                                     guest(1, 2, 30000, udp=True, mss=1400), guest(6, 2, 9000, udp=True, mss=999)]))
    # ECN to a port without it, a large segment size, plain frames too big
    # for the MTU (ICMP back), the uplink taking everything at MTU 1600.
    s["ecn-mtu"] = (bytes([3 | 4]) + burst(0, [guest(3, 3, 40000), guest(1, 3, 5000, mss=8000)]) +
                    burst(0, [guest(5, 0, 3000), guest(5, 0, 3000, v6=True), guest(6, 0, 1480)]))
    # What a guest may claim: raw fields, another IP version, damaged headers,
    # a lying IP length; full rings and the clock.
    raw = u16(0x0105) + u16(54) + u16(1) + u16(34) + u16(16)
    s["hostile"] = (bytes([15]) + burst(0, [guest(1, 4, 60000, extra=raw), guest(1, 5, 20000), guest(2, 6, 20000, extra=bytes([2, 23, 0x11, 47, 0xFF]))]) +
                    bytes([3]) + burst(0, [guest(1, 7, 40000, extra=u16(100)), guest(6, 2, 64000, mss=1)] + [guest(1, 2, 64000)] * 6) +
                    bytes([1]) + u16(1500) + bytes([2]) + burst(3, [guest(0, 2, 16000, v6=True)]))
    # Tunnel super-frames from the peer: batches of VXLAN datagrams (coalesced
    # for the guest, or not), checksum-partial, IPv6 inside, to a port
    # without offloads, and one VXLAN packet around a TCP super-frame.
    # (The uplink takes only checksum-partial batches, as built on this host:
    # form bit 2; one without it is the oversize drop it should be.)
    s["underlay-super"] = (bytes([0]) + super_frame(1 | 4, 10, 1398, 1398, 0) + super_frame(1 | 4, 8, 1000, 300, 1) +
                           super_frame(1 | 2 | 4, 6, 1378, 1378, 5) + super_frame(0, 12, 1398, 700, 1) +
                           super_frame(2, 4, 1378, 1378, 2) + super_frame(1 | 4 | 8, 3, 500, 500, 0) +
                           super_frame(1, 3, 500, 500, 0))
    # vpcctl capture (the switch, both ways, the largest snaplen) and trace
    # (port 0) while super-frames are segmented, flooded and encapsulated;
    # then a capture of port 0's output, 100 bytes, while a batch coalesces.
    capture_all = bytes([5, 0x40 | 16, 5]) + u16(65534)
    trace0 = bytes([5, 2 | 4, 20, 0])
    read = bytes([5, 3])
    s["observe"] = (bytes([0]) + capture_all + trace0 + burst(0, [guest(d, 2, 20000) for d in (1, 5, 6, 7)]) + read +
                    bytes([5, 1]) + bytes([5, 0x20, 0, 1]) + u16(100) + super_frame(1 | 4, 10, 1398, 1398, 0) + read)
    return s


def main():
    targets = {"local": local_seeds(), "uplink": uplink_seeds(), "commands": commands_seeds(), "vhost": vhost_seeds(), "offload": offload_seeds()}
    for t, seeds in targets.items():
        d = os.path.join(ROOT, t)
        os.makedirs(d, exist_ok=True)
        for f in os.listdir(d):
            os.remove(os.path.join(d, f))
        for name, data in seeds.items():
            with open(os.path.join(d, name), "wb") as fh:
                fh.write(data)
        print(f"{t}: {len(seeds)} seeds in {os.path.relpath(d)}", file=sys.stderr)


if __name__ == "__main__":
    main()
