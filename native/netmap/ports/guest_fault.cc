// SIGBUS in registered guest mappings (guest_fault.h).
#include "ports/guest_fault.h"

#include <signal.h>
#include <sys/mman.h>

#include <atomic>
#include <mutex>

namespace vpc {

namespace {

struct Zone {
  std::atomic<uintptr_t> lo{0}, hi{0}, page{0};
  std::atomic<uint64_t> faults{0};
};

Zone g_zones[GuestFaultZones::kMaxZones];
std::mutex g_mu;              // add and remove
bool g_installed = false;     // under g_mu
struct sigaction g_previous;  // the SIGBUS disposition before ours

void on_sigbus(int sig, siginfo_t* si, void* uc) {
  const uintptr_t a = uintptr_t(si->si_addr);
  for (Zone& z : g_zones) {
    const uintptr_t hi = z.hi.load(std::memory_order_acquire);
    if (a >= hi || a < z.lo.load(std::memory_order_relaxed)) continue;
    const uintptr_t lo = z.lo.load(std::memory_order_relaxed), page = z.page.load(std::memory_order_relaxed);
    void* at = reinterpret_cast<void*>(lo + ((a - lo) & ~(page - 1)));
    // mmap is a plain system call: safe here in practice, as in any runtime
    // that maps memory from a fault handler.
    if (::mmap(at, page, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) != MAP_FAILED) {
      z.faults.fetch_add(1, std::memory_order_relaxed);
      detail::guest_fault_epoch.fetch_add(1, std::memory_order_relaxed);
      return;  // the access runs again, on the zero page
    }
    break;
  }
  // Not a guest page: whatever was there before.
  if (g_previous.sa_flags & SA_SIGINFO) {
    if (g_previous.sa_sigaction) g_previous.sa_sigaction(sig, si, uc);
    return;
  }
  if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN) {
    g_previous.sa_handler(sig);
    return;
  }
  // The default: returning runs the access again, which now ends the process
  // with SIGBUS, as it would have without this handler.
  ::signal(SIGBUS, SIG_DFL);
}

bool install_locked() {
  if (g_installed) return true;
  struct sigaction sa = {};
  sa.sa_sigaction = on_sigbus;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  if (::sigaction(SIGBUS, &sa, &g_previous) != 0) return false;
  g_installed = true;
  return true;
}

}  // namespace

int GuestFaultZones::add(void* base, size_t len, size_t page) {
  std::lock_guard<std::mutex> g(g_mu);
  if (!install_locked()) return -1;
  for (int i = 0; i < kMaxZones; ++i) {
    Zone& z = g_zones[i];
    if (z.hi.load(std::memory_order_relaxed) != 0) continue;
    z.faults.store(0, std::memory_order_relaxed);
    z.page.store(page, std::memory_order_relaxed);
    z.lo.store(uintptr_t(base), std::memory_order_relaxed);
    z.hi.store(uintptr_t(base) + len, std::memory_order_release);
    return i;
  }
  return -1;
}

void GuestFaultZones::remove(int zone) {
  if (zone < 0 || zone >= kMaxZones) return;
  std::lock_guard<std::mutex> g(g_mu);
  g_zones[zone].hi.store(0, std::memory_order_release);
  g_zones[zone].lo.store(0, std::memory_order_relaxed);
}

uint64_t GuestFaultZones::faults(int zone) {
  if (zone < 0 || zone >= kMaxZones) return 0;
  return g_zones[zone].faults.load(std::memory_order_relaxed);
}

}  // namespace vpc
