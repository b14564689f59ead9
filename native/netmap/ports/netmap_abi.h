// The netmap user/kernel ABI (API version 14, the nmreq_header "new API"),
// written from netmap(4) and the documented layout of net/netmap.h. Used only
// where the system has no <net/netmap_user.h>; with the system header the
// same names come from there. netmap_abi_test.cc checks every size and offset
// below against the documented layout (and against the system header when
// one is installed).
#pragma once

#include <sys/ioctl.h>
#include <sys/time.h>

#include <cstddef>
#include <cstdint>

#if __has_include(<net/netmap_user.h>)
#define VPC_HAVE_SYSTEM_NETMAP 1
#include <net/netmap.h>
#include <net/netmap_user.h>
#else
#define VPC_HAVE_SYSTEM_NETMAP 0

#define NETMAP_API 14
#define NETMAP_REQ_IFNAMSIZ 64

// One buffer descriptor in a ring.
struct netmap_slot {
  uint32_t buf_idx;  // buffer index in the shared memory
  uint16_t len;      // frame length
  uint16_t flags;    // NS_*
  uint64_t ptr;      // indirect buffers (VALE tx only)
};
#define NS_BUF_CHANGED 0x0001
#define NS_MOREFRAG 0x0020

// A tx or rx ring. [head, tail) belongs to the application; the kernel
// moves tail on *SYNC, the application moves head (and cur) to give slots back.
struct netmap_ring {
  int64_t buf_ofs;       // buffer area, relative to this ring
  uint32_t num_slots;
  uint32_t nr_buf_size;
  uint16_t ringid;
  uint16_t dir;          // 0 tx, 1 rx
  uint32_t head;
  uint32_t cur;
  uint32_t tail;
  uint32_t flags;
  struct timeval ts;
  // Bytes 56..127 are padding up to the cache-aligned `sem` area (newer API
  // revisions place optional fields there; this code never reads them).
  alignas(128) uint8_t sem[128];
  struct netmap_slot slot[];  // num_slots of them
};

// The interface: ring counts and each ring's offset from this struct, tx
// rings first (NIC rings, then host rings), then rx rings.
struct netmap_if {
  char ni_name[16];
  uint32_t ni_version;
  uint32_t ni_flags;
  uint32_t ni_tx_rings;  // NIC tx rings, host rings not counted
  uint32_t ni_rx_rings;
  uint32_t ni_bufs_head;
  uint32_t ni_spare1[5];
  int64_t ring_ofs[];    // ssize_t in the original
};

// Every NIOCCTRL request starts with this header.
struct nmreq_header {
  uint16_t nr_version;   // NETMAP_API
  uint16_t nr_reqtype;   // NETMAP_REQ_*
  uint32_t nr_reserved;  // must be zero
  char nr_name[NETMAP_REQ_IFNAMSIZ];
  uint64_t nr_options;   // pointer to the first nmreq_option, or 0
  uint64_t nr_body;      // pointer to the request body
};

enum { NETMAP_REQ_REGISTER = 1, NETMAP_REQ_PORT_INFO_GET = 2 };

struct nmreq_register {
  uint64_t nr_offset;    // (out) netmap_if offset in the mapped region
  uint64_t nr_memsize;   // (out) size of the region to mmap
  uint32_t nr_tx_slots;
  uint32_t nr_rx_slots;
  uint16_t nr_tx_rings;
  uint16_t nr_rx_rings;
  uint16_t nr_mem_id;
  uint16_t nr_ringid;    // with NR_REG_ONE_NIC: which ring pair
  uint32_t nr_mode;      // NR_REG_*
  uint32_t nr_extra_bufs;
  uint64_t nr_flags;     // NR_* flags
};

enum { NR_REG_DEFAULT = 0, NR_REG_ALL_NIC = 1, NR_REG_SW = 2, NR_REG_NIC_SW = 3, NR_REG_ONE_NIC = 4 };
#define NR_EXCLUSIVE 0x800

// _IOWR('i', 151, struct nmreq_header), _IO('i', 148), _IO('i', 149).
#define NIOCCTRL _IOWR('i', 151, struct nmreq_header)
#define NIOCTXSYNC _IO('i', 148)
#define NIOCRXSYNC _IO('i', 149)

#endif  // system header

namespace vpc::netmap_abi {
// Ring i of the interface (tx rings come first, then rx rings).
inline netmap_ring* ring_at(netmap_if* nifp, uint32_t i) {
  return reinterpret_cast<netmap_ring*>(reinterpret_cast<char*>(nifp) + nifp->ring_ofs[i]);
}
inline uint8_t* buf_at(netmap_ring* r, uint32_t idx) {
  return reinterpret_cast<uint8_t*>(r) + r->buf_ofs + size_t(idx) * r->nr_buf_size;
}
inline uint32_t ring_next(const netmap_ring* r, uint32_t i) { return i + 1 == r->num_slots ? 0 : i + 1; }
}  // namespace vpc::netmap_abi
