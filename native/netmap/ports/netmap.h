// netmap port: the native netmap API (/dev/netmap, NIOCCTRL register, mmap,
// NIOCTXSYNC/NIOCRXSYNC) for NIC rings, host rings and VALE ports, on
// FreeBSD and on Linux with the netmap module loaded.
//
//   netmap rx rings ──copy──► engine buffer ──► rx_burst
//   tx_burst ──copy──► netmap tx ring ──► one NIOCTXSYNC per batch
//
// Frames are copied once each way: the engine's pool is not netmap memory.
// (Sharing it would need the NETMAP_REQ_OPT_EXTMEM option: not done.)
// One NIOCRXSYNC per rx call that finds the rings empty, one NIOCTXSYNC per
// tx batch; nothing per packet.
//
// Verified here: the ABI layout (netmap_abi_test.cc) and the error when
// /dev/netmap is absent. The data path has NOT run against a live netmap
// kernel on this project's machines; see docs/ports.md.
#pragma once

#include <memory>
#include <string>

#include "core/buffer_pool.h"
#include "ports/port.h"
#include "ports/spec.h"

struct netmap_if;
struct netmap_ring;

namespace vpc {

// The error text when /dev/netmap is missing (also used by tests).
std::string netmap_absent_message(const PortSpec& spec);

class NetmapPort final : public Port {
 public:
  static std::unique_ptr<NetmapPort> open(const PortSpec& spec, const KernelPortOptions& opts,
                                          std::shared_ptr<BufferPool> pool, std::shared_ptr<PortStatus> status,
                                          const char* device = "/dev/netmap");
  ~NetmapPort() override;

  const char* kind() const override { return "netmap"; }
  bool rx_large_frames() const override { return false; }  // a frame is one netmap slot
  uint16_t rx_burst(Pkt* pkts, uint16_t max) override;
  uint16_t tx_burst(Pkt* pkts, uint16_t n) override;
  int poll_fd() const override { return fd_; }
  LinkState link_state() const override;
  void detach() override;

 private:
  NetmapPort(std::shared_ptr<BufferPool> pool, std::shared_ptr<PortStatus> status);

  std::shared_ptr<BufferPool> pool_;
  std::shared_ptr<PortStatus> status_;
  BufferCache cache_;
  std::string ifname_;
  bool vale_ = false;
  int fd_ = -1;
  int ctl_ = -1;
  void* mem_ = nullptr;
  size_t mem_size_ = 0;
  netmap_if* nifp_ = nullptr;
  uint32_t tx_first_ = 0, tx_count_ = 0, rx_first_ = 0, rx_count_ = 0;
  uint32_t tx_next_ = 0;
  uint32_t burst_ = kMaxBurst;
};

}  // namespace vpc
