// A SIGBUS in mapped guest memory is a counted fault of that front end, not
// the end of the switch.
//
// A vhost-user front end hands the switch the files that hold its guest's
// memory, and set_mem_table() checks that each file covers its regions. But
// the front end keeps the file: if it shrinks it afterwards (ftruncate on a
// memfd it did not seal, or on a tmpfs or hugetlbfs file, which cannot be
// sealed), the next touch of a page past the new end is a SIGBUS in the
// engine thread, and by default the whole process dies with every port of
// every tenant. Such a front end is broken or hostile; only it should lose.
//
// So each guest mapping is registered here as a zone (its address range and
// page size). The process's SIGBUS handler, installed when the first zone is
// added, looks the faulting address up: inside a zone, it maps a private
// zero page (of the zone's page size) over the page that faulted and returns,
// so the access completes on zeros, and counts the fault on the zone and on
// a process-wide epoch. The port compares that epoch once per burst
// (faults_epoch(), one relaxed load) and, when it moved and one of its zones
// faulted, drops what that burst read and drops the front end
// (vhost_user.cc). Any other SIGBUS goes to the handler that was there
// before, or ends the process as it would have.
//
// Registration takes a lock and runs on the control path; the handler only
// reads the zone table (each zone's bounds are published hi last and cleared
// hi first, so a half-written zone matches nothing).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace vpc {

namespace detail {
inline std::atomic<uint64_t> guest_fault_epoch{0};
}

class GuestFaultZones {
 public:
  static constexpr int kMaxZones = 8192;  // 1,024 ports of 8 regions
  // Registers [base, base + len), mapped with pages of `page` bytes (a power
  // of two; base and len multiples of it). Returns the zone, or -1 when the
  // table is full or the handler could not be installed.
  static int add(void* base, size_t len, size_t page);
  // Forgets a zone (before its range is unmapped); -1 is ignored.
  static void remove(int zone);
  // SIGBUS faults caught in a zone since it was added.
  static uint64_t faults(int zone);
  // Moves on every fault caught, in any zone (a relaxed load: the fault
  // and the look both happen on the thread that touched the page).
  static uint64_t epoch() { return detail::guest_fault_epoch.load(std::memory_order_relaxed); }
};

}  // namespace vpc
