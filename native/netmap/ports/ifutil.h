// Helpers shared by the Linux port backends: interface lookups through a
// control socket, offload toggling through the ethtool ioctl, a registry of
// interfaces claimed by this process, and software completion of partial
// (offloaded) checksums. Linux only, like the backends that use them.
#pragma once

#include <cstdint>
#include <string>

#include "core/types.h"
#include <utility>
#include <vector>

namespace vpc {

// CLOCK_MONOTONIC in milliseconds (re-open back-off, bounded waits).
uint64_t mono_ms();

// An AF_INET datagram socket used only for interface ioctls; -1 on failure.
int ctl_socket();
// Interface index by name in the control socket's namespace: > 0, or -errno.
int if_index(int ctl, const std::string& name);
// Interface flags (IFF_*); returns 0 or -errno.
int if_flags(int ctl, const std::string& name, unsigned* flags);
int if_set_flags(int ctl, const std::string& name, unsigned set, unsigned clear);
int if_mtu(int ctl, const std::string& name);  // > 0 or -errno
int if_hwaddr(int ctl, const std::string& name, Mac* mac);  // 0 or -errno
// The interface's MAC into *mac when it has one and it differs (a port made
// while its interface was missing reads it when the interface appears; later
// ones follow `ip link set ... address` and an interface made again). True
// when *mac changed. An uplink's VTEP passes a change on to the peers that
// hold the old one (Overlay::adopt_interface_mac).
bool if_hwaddr_follow(int ctl, const std::string& name, Mac* mac);
// Receive queues of an interface: rx + combined channels (ETHTOOL_GCHANNELS),
// else the rx-N entries of /sys/class/net/NAME/queues; 0 when neither says.
uint32_t if_rx_queues(int ctl, const std::string& name);
// The interface's driver (ETHTOOL_GDRVINFO: "veth", "tun", "virtio_net", ...),
// or "" when it does not say.
std::string if_driver(int ctl, const std::string& name);
// The interface's GRO is on (ETHTOOL_GGRO); false when it cannot be read.
bool if_gro(int ctl, const std::string& name);
// Turns one boolean offload on or off (ETHTOOL_SGRO, ETHTOOL_STSO, ...): 0 or -errno.
int if_set_offload(int ctl, const std::string& name, uint32_t cmd, bool on);

// Offloads the switch must not see: GRO and LRO (merged receive super-frames),
// TSO/GSO (segmentation left to the device) and tx checksumming (checksums
// left to the device). offloads_off() turns each one that is on off and
// remembers it; offloads_restore() turns those back on, in reverse order.
struct OffloadSaved {
  std::string ifname;
  int ifindex = 0;
  std::vector<std::pair<uint32_t, uint32_t>> changed;  // (ethtool set command, previous value)
  std::string journal;  // the record written for it, if any
};
// Returns a human-readable summary ("turned off: gro tso tx-checksum" or why not).
// receive_only: GRO and LRO only (the transmit offloads stay as they are).
std::string offloads_off(int ctl, const std::string& ifname, OffloadSaved* saved, bool receive_only = false);
void offloads_restore(int ctl, OffloadSaved* saved);

// The offload journal: with a directory set, offloads_off() writes a small
// record (offloads-<ifname>: the ifindex and each changed setting's previous
// value) before it changes anything, and offloads_restore() deletes it after
// restoring. A process killed in between (kill -9) leaves the record, and
// offloads_recover() at the next start puts those interfaces back (only the
// same interface: a new one with the same name is left alone) and deletes the
// records. Returns the names of the interfaces restored.
void offloads_journal(const std::string& dir);  // "" turns it off
std::vector<std::string> offloads_recover(int ctl, const std::string& dir, std::string* err);
// Another record in the same journal (name: its file name), whole or absent;
// returns its path, or "" without a journal or on failure. For state other
// than offloads that a killed process would leave behind (an afxdp port's
// XDP program: xdp_recover in ports/afxdp.h).
std::string journal_record(const std::string& name, const std::string& text);
// The complete records in `dir` whose names start with `prefix` (a record
// never completed, left as its temporary file, is deleted). Empty when the
// directory does not exist; other failures set *err.
std::vector<std::string> journal_records(const std::string& dir, const std::string& prefix, std::string* err = nullptr);

// One port per interface: AF_PACKET would otherwise happily let two ports
// see each other's traffic, two switches would loop it. Claimed in this
// process, and for the host by an abstract unix socket in the caller's
// network namespace, so that a second vpcd (another state directory, another
// socket) cannot attach the same interface either; the kernel drops that
// claim when the process ends, kill -9 included.
enum class Claim : uint8_t { kOk, kThisProcess, kOtherProcess };
Claim claim_interface(const std::string& name);
void release_interface(const std::string& name);
// The refusal for a claim that failed, naming `what` ("interface eth0").
std::string claim_refused(const std::string& what, Claim c);

// Completes the checksum of a frame whose L4 checksum field holds only the
// pseudo-header sum (Linux CHECKSUM_PARTIAL, handed over by AF_PACKET with
// TP_STATUS_CSUMNOTREADY). Handles Ethernet (+ one 802.1Q tag) / IPv4 or IPv6
// (no extension headers) / TCP or UDP. Returns false when it cannot tell
// where the checksum is; the frame is then left as it is.
bool finish_partial_checksum(uint8_t* frame, uint32_t len);

// Where a frame's TCP or UDP checksum lives (Ethernet, one optional VLAN tag,
// IPv4 or IPv6, not a fragment): the L4 span, the checksum field's offset and
// the unfolded pseudo-header sum. False for anything else or a short frame.
struct L4Checksum {
  uint8_t proto;
  uint32_t l4, end, field;
  uint32_t pseudo;
};
bool locate_l4_checksum(const uint8_t* frame, uint32_t len, L4Checksum* out);

// "open /dev/net/tun: Operation not permitted" -> adds what to do for EPERM
// and EACCES: which capability is missing.
std::string sys_error(const std::string& what, int err, const char* capability);

}  // namespace vpc
