#include "overlay/switch_peer_counters.h"

#include <sys/mman.h>

#include <new>

namespace vpc {

namespace {
constexpr size_t kBytes = sizeof(SwitchPeerCounterBlock) * kMaxMembers;
}

SwitchPeerBlocks::SwitchPeerBlocks() {
  // Anonymous pages read as zero and are committed on first write.
  void* p = mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  base_ = static_cast<SwitchPeerCounterBlock*>(p);
}

SwitchPeerBlocks::~SwitchPeerBlocks() { munmap(base_, kBytes); }

}  // namespace vpc
